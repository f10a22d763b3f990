package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Subject is the image a document describes.
type Subject struct {
	// Repository is where the image lives ("registry/name"), when it has a name.
	Repository string
	Digest     v1.Hash
	// Created is the image's creation time (its config's), which the documents give as
	// theirs: the same image, the same documents.
	Created time.Time
	// Tool is the pyship version that wrote the document.
	Tool string
}

// Formats of a bill of materials, and the media types they are attached with.
const (
	FormatSPDX      = "spdx"
	FormatCycloneDX = "cyclonedx"

	SPDXMediaType      types.MediaType = "application/spdx+json"
	CycloneDXMediaType types.MediaType = "application/vnd.cyclonedx+json"
)

// MediaType is the media type of a bill of materials in format.
func MediaType(format string) (types.MediaType, error) {
	switch format {
	case FormatSPDX:
		return SPDXMediaType, nil
	case FormatCycloneDX:
		return CycloneDXMediaType, nil
	}
	return "", fmt.Errorf("no bill of materials format %q: spdx or cyclonedx", format)
}

// SBOM writes inv as a bill of materials of s in format.
func SBOM(format string, inv *Inventory, s Subject) ([]byte, error) {
	var doc any
	switch format {
	case FormatSPDX:
		doc = spdxDocument(inv, s)
	case FormatCycloneDX:
		doc = cycloneDXDocument(inv, s)
	default:
		_, err := MediaType(format)
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // package URLs hold '&'
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sbomsDir is where SBOMOf keeps documents in a cache directory; documentVersion changes
// when what pyship writes in them does, so a cached one is never an older pyship's.
const (
	sbomsDir        = "sboms.1"
	documentVersion = "1"
)

// SBOMOf returns the bill of materials of img (described as s) in format. A document is a
// function of the image, s and pyship: with cacheDir, it is kept there and read back, so a
// rebuild that makes the same image reads no layer records.
func SBOMOf(format string, img v1.Image, s Subject, cacheDir string) ([]byte, error) {
	var file string
	if cacheDir != "" {
		h := sha256.Sum256([]byte(strings.Join([]string{documentVersion, format, s.Tool, s.Repository, s.Digest.String(), timestamp(s.Created)}, "\x00")))
		file = filepath.Join(cacheDir, sbomsDir, hex.EncodeToString(h[:])+".json")
		if data, err := os.ReadFile(file); err == nil {
			return data, nil
		}
	}
	inv, err := Scan(img, cacheDir)
	if err != nil {
		return nil, err
	}
	data, err := SBOM(format, inv, s)
	if err != nil || file == "" {
		return data, err
	}
	return data, writeFileAtomic(file, data)
}

// imageName is the image's name (the last part of its repository), or "image".
func (s Subject) imageName() string {
	if s.Repository == "" {
		return "image"
	}
	return path.Base(s.Repository)
}

// purl is the image's package URL.
func (s Subject) purl() string {
	p := "pkg:oci/" + strings.ToLower(s.imageName()) + "@" + pctEncode(s.Digest.String())
	if s.Repository != "" {
		p += "?repository_url=" + pctEncode(s.Repository)
	}
	return p
}

// pypiPURL is a Python distribution's package URL, its name normalised as the package
// index does (PEP 503).
func pypiPURL(d PyDist) string {
	return "pkg:pypi/" + normalise(d.Name) + "@" + pctEncode(d.Version)
}

var separators = regexp.MustCompile(`[-_.]+`)

func normalise(name string) string { return separators.ReplaceAllString(strings.ToLower(name), "-") }

// debPURL is a Debian package's package URL.
func debPURL(p DebPackage, release OSRelease) string {
	distro := orDefault(release.ID, "debian")
	u := "pkg:deb/" + pctEncode(distro) + "/" + pctEncode(p.Name) + "@" + pctEncode(p.Version) + "?arch=" + pctEncode(p.Arch)
	if release.VersionID != "" {
		u += "&distro=" + pctEncode(distro+"-"+release.VersionID)
	}
	return u
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pctEncode percent-encodes everything but the characters a package URL's parts may hold
// as they are.
func pctEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// serialNumber is a UUID (version 5 in form) made from the image digest, so the same
// image gets the same one.
func serialNumber(d v1.Hash, format string) string {
	h := sha256.Sum256([]byte(format + "\x00" + d.String()))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// timestamp is t as both formats write times.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// --- SPDX 2.3 ---

type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string         `json:"SPDXID"`
	Name                  string         `json:"name"`
	VersionInfo           string         `json:"versionInfo,omitempty"`
	DownloadLocation      string         `json:"downloadLocation"`
	FilesAnalyzed         bool           `json:"filesAnalyzed"`
	LicenseConcluded      string         `json:"licenseConcluded"`
	LicenseDeclared       string         `json:"licenseDeclared"`
	LicenseComments       string         `json:"licenseComments,omitempty"`
	CopyrightText         string         `json:"copyrightText"`
	SourceInfo            string         `json:"sourceInfo,omitempty"`
	Comment               string         `json:"comment,omitempty"`
	PrimaryPackagePurpose string         `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExtRef   `json:"externalRefs,omitempty"`
	Checksums             []spdxChecksum `json:"checksums,omitempty"`
}

type spdxExtRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

var notIDChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func spdxDocument(inv *Inventory, s Subject) spdxDoc {
	const noAssertion = "NOASSERTION"
	image := spdxPackage{
		SPDXID: "SPDXRef-image", Name: s.imageName(), VersionInfo: s.Digest.String(),
		DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
		PrimaryPackagePurpose: "CONTAINER",
		ExternalRefs:          []spdxExtRef{{"PACKAGE-MANAGER", "purl", s.purl()}},
		Checksums:             []spdxChecksum{{"SHA256", s.Digest.Hex}},
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              s.imageName() + "@" + s.Digest.String(),
		DocumentNamespace: "https://github.com/pyship/pyship/spdx/" + s.Digest.Algorithm + "-" + s.Digest.Hex,
		CreationInfo:      spdxCreation{Created: timestamp(s.Created), Creators: []string{"Tool: pyship-" + s.Tool}},
		DocumentDescribes: []string{image.SPDXID},
		Packages:          []spdxPackage{image},
	}
	seen := map[string]int{}
	id := func(kind, name, version string) string {
		base := "SPDXRef-" + kind + "-" + strings.Trim(notIDChars.ReplaceAllString(name+"-"+version, "-"), "-")
		seen[base]++
		if n := seen[base]; n > 1 {
			return fmt.Sprintf("%s-%d", base, n)
		}
		return base
	}
	add := func(p spdxPackage) {
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{image.SPDXID, "CONTAINS", p.SPDXID})
	}
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", image.SPDXID})
	for _, p := range inv.Debian {
		pkg := spdxPackage{
			SPDXID: id("deb", p.Name, p.Version), Name: p.Name, VersionInfo: p.Version,
			DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "OPERATING-SYSTEM",
			ExternalRefs:          []spdxExtRef{{"PACKAGE-MANAGER", "purl", debPURL(p, inv.OS)}},
		}
		if p.Source != "" {
			pkg.SourceInfo = "built from the Debian source package " + p.Source
		}
		add(pkg)
	}
	for _, d := range inv.Python {
		pkg := spdxPackage{
			SPDXID: id("pypi", d.Name, d.Version), Name: d.Name, VersionInfo: d.Version,
			DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs:          []spdxExtRef{{"PACKAGE-MANAGER", "purl", pypiPURL(d)}},
			Comment:               "installed in " + d.Dir,
		}
		if l := spdxLicense(d.License); l != "" {
			pkg.LicenseDeclared = l
		} else if d.License != "" {
			pkg.LicenseComments = "the metadata declares: " + firstLine(d.License)
		}
		if d.RecordSHA256 != "" {
			pkg.Comment += "; its RECORD file, which lists the sha256 of every file it installed, has sha256 " + d.RecordSHA256
		}
		add(pkg)
	}
	return doc
}

// firstLine is the first line of s, at most 200 bytes of it.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// --- CycloneDX 1.6 ---

type cdxDoc struct {
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Licenses   []cdxLicense  `json:"licenses,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxLicense struct {
	Expression string           `json:"expression,omitempty"`
	License    *cdxNamedLicense `json:"license,omitempty"`
}

type cdxNamedLicense struct {
	Name string `json:"name"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

func cycloneDXDocument(inv *Inventory, s Subject) cdxDoc {
	image := cdxComponent{Type: "container", BOMRef: "image", Name: s.imageName(), Version: s.Digest.String(), PURL: s.purl(),
		Hashes: []cdxHash{{"SHA-256", s.Digest.Hex}}}
	doc := cdxDoc{
		BOMFormat: "CycloneDX", SpecVersion: "1.6", SerialNumber: serialNumber(s.Digest, FormatCycloneDX), Version: 1,
		Metadata: cdxMetadata{
			Timestamp: timestamp(s.Created),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: "pyship", Version: s.Tool}}},
			Component: image,
		},
		Components: []cdxComponent{},
	}
	refs := []string{}
	seen := map[string]int{}
	ref := func(base string) string {
		seen[base]++
		if n := seen[base]; n > 1 {
			return fmt.Sprintf("%s#%d", base, n)
		}
		return base
	}
	for _, p := range inv.Debian {
		c := cdxComponent{Type: "library", BOMRef: ref(debPURL(p, inv.OS)), Name: p.Name, Version: p.Version, PURL: debPURL(p, inv.OS)}
		if p.Source != "" {
			c.Properties = []cdxProperty{{"pyship:debian:source", p.Source}}
		}
		doc.Components = append(doc.Components, c)
		refs = append(refs, c.BOMRef)
	}
	for _, d := range inv.Python {
		c := cdxComponent{Type: "library", BOMRef: ref(pypiPURL(d)), Name: d.Name, Version: d.Version, PURL: pypiPURL(d),
			Properties: []cdxProperty{{"pyship:python:location", d.Dir}}}
		if l := spdxLicense(d.License); l != "" {
			c.Licenses = []cdxLicense{{Expression: l}}
		} else if d.License != "" {
			c.Licenses = []cdxLicense{{License: &cdxNamedLicense{Name: firstLine(d.License)}}}
		}
		if d.RecordSHA256 != "" {
			c.Properties = append(c.Properties, cdxProperty{"pyship:python:record-sha256", d.RecordSHA256})
		}
		doc.Components = append(doc.Components, c)
		refs = append(refs, c.BOMRef)
	}
	doc.Dependencies = []cdxDependency{{Ref: image.BOMRef, DependsOn: refs}}
	return doc
}
