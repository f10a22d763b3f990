package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/attest"
	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// The evidence an image carries beside it, as OCI referrers: its bill of materials, its
// provenance and, once pyship publish has smoke-tested it, the test's result.

// sbomNone turns the bill of materials off.
const sbomNone = "none"

// registerSBOM adds --sbom-format to a command that writes or pushes images.
func registerSBOM(fs *flag.FlagSet, format *string) {
	def := os.Getenv("PYSHIP_SBOM_FORMAT")
	if def == "" {
		def = attest.FormatSPDX
	}
	fs.StringVar(format, "sbom-format", def, "`FORMAT` of the bill of materials attached to the image: spdx (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6 JSON) or none (env PYSHIP_SBOM_FORMAT)")
}

// checkSBOMFormat refuses a format pyship does not write, before anything is built.
func checkSBOMFormat(format string) error {
	if format == sbomNone {
		return nil
	}
	if _, err := attest.MediaType(format); err != nil {
		return usagef("--sbom-format (or PYSHIP_SBOM_FORMAT) %q: want spdx, cyclonedx or none", format)
	}
	return nil
}

// evidence returns the artifacts to attach beside the image img: its bill of materials in
// sbomFormat (none with "none"), its provenance from inputs, and, when report is not nil,
// the statement of the smoke test that check asked for. repo names where the image goes,
// when it has a name.
func evidence(img v1.Image, inputs attest.BuildInputs, sbomFormat, repo, cacheDir string, report *sandbox.Report, check sandbox.Check, log hclog.Logger) ([]v1.Image, error) {
	start := time.Now()
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	created := cf.Created.Time
	subject := attest.Subject{Repository: repo, Digest: desc.Digest, Created: created, Tool: version}
	var out []v1.Image
	add := func(mt types.MediaType, data []byte, annotations map[string]string) error {
		a, err := attest.Artifact(*desc, mt, data, created, annotations)
		if err == nil {
			out = append(out, a)
		}
		return err
	}
	if sbomFormat != sbomNone {
		mt, err := attest.MediaType(sbomFormat)
		if err != nil {
			return nil, err
		}
		data, err := attest.SBOMOf(sbomFormat, img, subject, cacheDir)
		if err != nil {
			return nil, fmt.Errorf("reading the image for its bill of materials: %w", err)
		}
		if err := add(mt, data, nil); err != nil {
			return nil, err
		}
	}
	prov, err := attest.Provenance(subject, inputs)
	if err != nil {
		return nil, err
	}
	if err := add(attest.InTotoMediaType, prov, map[string]string{attest.PredicateAnnotation: attest.ProvenancePredicate}); err != nil {
		return nil, err
	}
	if report != nil {
		st, err := attest.SmokeTest(subject, smokeResult(report, check))
		if err != nil {
			return nil, err
		}
		if err := add(attest.InTotoMediaType, st, map[string]string{attest.PredicateAnnotation: attest.SmokePredicate}); err != nil {
			return nil, err
		}
	}
	log.Info("evidence written", "sbom", sbomFormat, "provenance", true, "smoke_test", report != nil, "took", since(start))
	return out, nil
}

// builtEvidence is evidence for a built image, its provenance from what the build read.
func builtEvidence(b *built, sbomFormat, repo, cacheDir string, report *sandbox.Report, check sandbox.Check, log hclog.Logger) ([]v1.Image, error) {
	inputs, err := b.inputs()
	if err != nil {
		return nil, err
	}
	return evidence(b.res.Image, inputs, sbomFormat, repo, cacheDir, report, check, log)
}

// inputs are what the build read, for its provenance: the repository and commit, the
// base by digest, the dependency files with their sha256, the plan, and the CI run.
func (b *built) inputs() (attest.BuildInputs, error) {
	plan, err := json.Marshal(b.plan)
	if err != nil {
		return attest.BuildInputs{}, err
	}
	in := attest.BuildInputs{Source: b.info.source, Revision: b.info.revision, Base: b.res.Base.String(), Plan: plan, Invocation: runURL()}
	root, err := os.OpenRoot(b.dir)
	if err != nil {
		return in, err
	}
	defer root.Close()
	for _, f := range b.plan.Dependencies.Files {
		r, err := root.Open(f)
		if err != nil {
			return in, err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return in, err
		}
		in.Files = append(in.Files, attest.InputFile{Path: f, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return in, nil
}

// runURL is the URL of the GitHub Actions run pyship runs in, or "".
func runURL() string {
	if os.Getenv("GITHUB_ACTIONS") != "true" || os.Getenv("GITHUB_RUN_ID") == "" {
		return ""
	}
	u := strings.TrimSuffix(os.Getenv("GITHUB_SERVER_URL"), "/") + "/" + os.Getenv("GITHUB_REPOSITORY") + "/actions/runs/" + os.Getenv("GITHUB_RUN_ID")
	if a := os.Getenv("GITHUB_RUN_ATTEMPT"); a != "" {
		u += "/attempts/" + a
	}
	return u
}

// smokeResult is a smoke test's report as its statement records it.
func smokeResult(r *sandbox.Report, check sandbox.Check) attest.SmokeResult {
	out := attest.SmokeResult{
		Request: attest.SmokeRequest{Method: "GET", Path: check.Path, Port: r.Port, ExpectedStatus: check.Status, ExpectedBody: check.Body},
		Verdict: r.Verdict, Failure: r.Failure, Reason: r.Reason, Status: r.Status,
		FirstResponseMS: float64(r.FirstResponse.Microseconds()) / 1000,
		Finished:        time.Now(),
	}
	out.Usage.MemoryPeakBytes, out.Usage.CPUSeconds = r.Usage.MemoryPeak, r.Usage.CPU.Seconds()
	out.Limits.MemoryBytes, out.Limits.CPUs, out.Limits.Pids = r.Limits.Memory, r.Limits.CPUs, r.Limits.Pids
	return out
}

// referrers returns the digest of the image ref names (a registry reference, an OCI
// layout directory holding one image, or DIR@sha256:...) and the artifacts whose subject
// it is.
func referrers(ctx context.Context, ref string, c *common, rf *registryFlags) (v1.Hash, []v1.Image, error) {
	if dir, digest, ok := layoutRef(ref); ok {
		return layoutReferrers(dir, digest)
	}
	return registryReferrers(ctx, ref, c, rf)
}

// layoutRef splits DIR or DIR@DIGEST when DIR is a directory.
func layoutRef(ref string) (dir, digest string, ok bool) {
	dir = ref
	if i := strings.LastIndex(ref, "@sha256:"); i > 0 {
		dir, digest = ref[:i], ref[i+1:]
	}
	info, err := os.Stat(filepath.Clean(dir))
	return dir, digest, err == nil && info.IsDir()
}

func layoutReferrers(dir, digest string) (v1.Hash, []v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	var subject v1.Hash
	if digest != "" {
		if subject, err = v1.NewHash(digest); err != nil {
			return v1.Hash{}, nil, fail(exitUsage, fmt.Errorf("%q: %w", digest, err))
		}
	} else {
		images := layoutImages(m)
		if len(images) != 1 {
			return v1.Hash{}, nil, fail(exitUsage, fmt.Errorf("the layout %s holds %d images; name one as %s@sha256:...", dir, len(images), dir))
		}
		subject = images[0]
	}
	var out []v1.Image
	for _, desc := range m.Manifests {
		img, err := p.Image(desc.Digest)
		if err != nil {
			continue
		}
		if am, err := img.Manifest(); err == nil && am.Subject != nil && am.Subject.Digest == subject {
			out = append(out, img)
		}
	}
	return subject, out, nil
}

func registryReferrers(ctx context.Context, ref string, c *common, rf *registryFlags) (v1.Hash, []v1.Image, error) {
	r, err := name.ParseReference(ref, rf.nameOptions()...)
	if err != nil {
		return v1.Hash{}, nil, fail(exitUsage, fmt.Errorf("%q is neither an image reference nor a directory: %w", ref, err))
	}
	transport, err := c.registry()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	keychain := c.keychain
	if keychain == nil {
		keychain = publish.Keychain(nil)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(transport), remote.WithAuthFromKeychain(keychain)}
	desc, err := remote.Head(r, opts...)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	idx, err := remote.Referrers(r.Context().Digest(desc.Digest.String()), opts...)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	var out []v1.Image
	for _, d := range m.Manifests {
		if !evidenceTypes[d.ArtifactType] {
			// Another tool's referrer (a signature, an index): not pyship's to read.
			continue
		}
		img, err := remote.Image(r.Context().Digest(d.Digest.String()), opts...)
		if err != nil {
			// One unreadable referrer leaves the others: what is missing is reported.
			continue
		}
		if am, err := img.Manifest(); err == nil && am.Subject != nil && am.Subject.Digest == desc.Digest {
			out = append(out, img)
		}
	}
	return desc.Digest, out, nil
}

// layoutImages are the images an OCI layout's index lists, without the artifacts attached
// to them (whose artifact type is not an image config's).
func layoutImages(m *v1.IndexManifest) []v1.Hash {
	var images []v1.Hash
	for _, desc := range m.Manifests {
		if desc.ArtifactType == "" || desc.ArtifactType == string(types.OCIConfigJSON) || desc.ArtifactType == string(types.DockerConfigJSON) {
			images = append(images, desc.Digest)
		}
	}
	return images
}

// evidenceTypes are the artifact types of what pyship attaches.
var evidenceTypes = map[string]bool{
	string(attest.SPDXMediaType): true, string(attest.CycloneDXMediaType): true, string(attest.InTotoMediaType): true,
}

// artifactOf returns the data of the first artifact of type mt (with the predicate
// annotation predicate, when not empty) among arts.
func artifactOf(arts []v1.Image, mt types.MediaType, predicate string) ([]byte, error) {
	for _, a := range arts {
		m, err := a.Manifest()
		if err != nil || m.ArtifactType != string(mt) || predicate != "" && m.Annotations[attest.PredicateAnnotation] != predicate {
			continue
		}
		return attest.ReadArtifact(a, mt)
	}
	return nil, attest.ErrNotFound
}

// imageFlags are how pyship sbom and pyship verify reach an image.
func imageFlags(fs *flag.FlagSet, c *common, rf *registryFlags) {
	c.register(fs)
	rf.register(fs)
}

// parseOne parses a command that takes one image reference.
func parseOne(fs *flag.FlagSet, args []string, usage string) (string, error) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", fail(exitUsage, err)
	}
	if fs.NArg() != 1 {
		return "", usagef("%s takes one image: a registry reference, an OCI layout directory, or DIR@sha256:...", fs.Name())
	}
	return fs.Arg(0), nil
}

// runSBOM prints the bill of materials attached to an image in a registry or an OCI layout.
func runSBOM(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pyship sbom", flag.ContinueOnError)
	format := fs.String("format", attest.FormatSPDX, "`FORMAT` to print: spdx or cyclonedx")
	var c common
	var rf registryFlags
	imageFlags(fs, &c, &rf)
	ref, err := parseOne(fs, args, "Usage: pyship sbom [flags] REF\n\nPrints the bill of materials attached to the image REF: a registry reference\n(REGISTRY/REPOSITORY[:TAG|@DIGEST]), an OCI layout directory holding one image, or DIR@sha256:....")
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	mt, err := attest.MediaType(*format)
	if err != nil {
		return usagef("--format %q: want spdx or cyclonedx", *format)
	}
	_, arts, err := referrers(ctx, ref, &c, &rf)
	if err != nil {
		return evidenceError(ref, err)
	}
	data, err := artifactOf(arts, mt, "")
	if errors.Is(err, attest.ErrNotFound) {
		return fail(exitPublish, fmt.Errorf("%s has no %s bill of materials attached\nhint: pyship attaches one when it writes or pushes an image (unless --sbom-format none); ask for the other format with --format", ref, *format))
	}
	if err != nil {
		return evidenceError(ref, err)
	}
	_, err = os.Stdout.Write(data)
	return err
}

// evidenceError is a failure to read an image's evidence.
func evidenceError(ref string, err error) error {
	var e *exitError
	if errors.As(err, &e) {
		return err
	}
	return fail(exitPublish, fmt.Errorf("reading what is attached to %s: %w\nhint: check the reference, that the registry is reachable, and the credentials (--username/--password-stdin)", ref, err))
}
