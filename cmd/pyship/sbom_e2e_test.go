//go:build linux && e2e

package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
)

// TestSBOM: a pushed image carries an SPDX bill of materials, found through the registry's
// referrers (the tag schema, on this registry), that lists every Python distribution and
// Debian package the image holds and that SPDX's own validator accepts; a second runner
// with an empty cache gives the same bytes; an OCI layout carries a CycloneDX one that
// CycloneDX's validator accepts; --sbom-format none attaches nothing.
func TestSBOM(t *testing.T) {
	reg := fixtures.Testbed(t)
	tools := os.Getenv("PYSHIP_TEST_SBOM_TOOLS")
	fixtures.Need(t, tools != "", `no SBOM validators: run eval "$(fixtures/testbed/up)" first`)
	src := copyFixture(t, "flask-hello")
	repo := reg + "/e2e/sbom-" + uniqueTag()
	runner := func() []string { return []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")} }

	pushed := builtDigest(t, pyship(t, runner(), "build", src, "--push", "--image", repo+":v1"))
	got := pyship(t, nil, "sbom", repo+":v1")
	if got.code != 0 {
		t.Fatalf("pyship sbom: exit %d\n%s", got.code, got.stderr)
	}
	doc := got.stdout
	checkWith(t, filepath.Join(tools, "pyspdxtools"), "-i", writeTemp(t, "sbom.spdx.json", doc))

	// What the document lists is what the image holds.
	ref, err := name.ParseReference(repo + "@" + pushed.String())
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	dists, debs := imageContents(t, mutate.Extract(img))
	var spdx struct {
		Packages []struct {
			SPDXID, Name, VersionInfo string
		}
	}
	if err := json.Unmarshal([]byte(doc), &spdx); err != nil {
		t.Fatal(err)
	}
	var listedPy, listedDeb []string
	for _, p := range spdx.Packages {
		switch {
		case strings.HasPrefix(p.SPDXID, "SPDXRef-pypi-"):
			listedPy = append(listedPy, normalise(p.Name)+"=="+p.VersionInfo)
		case strings.HasPrefix(p.SPDXID, "SPDXRef-deb-"):
			listedDeb = append(listedDeb, p.Name+"="+p.VersionInfo)
		}
	}
	slices.Sort(listedPy)
	slices.Sort(listedDeb)
	if !slices.Equal(listedPy, dists) || !slices.ContainsFunc(dists, func(d string) bool { return strings.HasPrefix(d, "flask==") }) {
		t.Errorf("the SBOM lists the Python distributions\n%v\nthe image holds\n%v", listedPy, dists)
	}
	if !slices.Equal(listedDeb, debs) || len(debs) < 20 {
		t.Errorf("the SBOM lists %d Debian packages, the image's dpkg status %d:\n%v\n%v", len(listedDeb), len(debs), listedDeb, debs)
	}

	// Found through the referrers tag schema: this registry has no referrers API.
	idx, err := remote.Referrers(ref.Context().Digest(pushed.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, d := range m.Manifests {
		types = append(types, d.ArtifactType)
	}
	slices.Sort(types)
	if want := []string{"application/spdx+json", "application/vnd.in-toto+json"}; !slices.Equal(types, want) {
		t.Fatalf("the image's referrers are of types %v, want %v (its bill of materials and provenance)", types, want)
	}

	// Another runner, an empty cache: the same image, the same document.
	if d := builtDigest(t, pyship(t, runner(), "build", src, "--push", "--image", repo+":v2")); d != pushed {
		t.Fatalf("the second build gave %s, the first %s", d, pushed)
	}
	if again := pyship(t, nil, "sbom", repo+"@"+pushed.String()); again.stdout != doc {
		t.Errorf("the second runner's SBOM differs from the first's:\n%s", fixtures.Diff("first", []byte(doc), "second", []byte(again.stdout)))
	}

	// CycloneDX, in an OCI layout.
	out := t.TempDir()
	built := builtDigest(t, pyship(t, runner(), "build", src, "--sbom-format", "cyclonedx", "--oci-layout", out))
	cdx := pyship(t, nil, "sbom", "--format", "cyclonedx", out)
	if cdx.code != 0 || !strings.Contains(cdx.stdout, `"specVersion": "1.6"`) || !strings.Contains(cdx.stdout, built.Hex) {
		t.Fatalf("pyship sbom --format cyclonedx on the layout: exit %d\n%s\n%.400s", cdx.code, cdx.stderr, cdx.stdout)
	}
	checkWith(t, filepath.Join(tools, "python"), "-c", cycloneDXCheck, writeTemp(t, "sbom.cdx.json", cdx.stdout))
	if spdxMissing := pyship(t, nil, "sbom", out); spdxMissing.code != exitPublish || !strings.Contains(spdxMissing.stderr, "no spdx bill of materials") {
		t.Errorf("asking a layout with only a CycloneDX document for SPDX: exit %d\n%s", spdxMissing.code, spdxMissing.stderr)
	}

	// Turned off: nothing attached, and pyship sbom says so.
	none := t.TempDir()
	builtDigest(t, pyship(t, runner(), "build", src, "--sbom-format", "none", "--oci-layout", none))
	if r := pyship(t, nil, "sbom", none); r.code != exitPublish || !strings.Contains(r.stderr, "has no spdx bill of materials attached") {
		t.Errorf("pyship sbom of an image built with --sbom-format none: exit %d\n%s", r.code, r.stderr)
	}
	if r := pyship(t, runner(), "build", src, "--sbom-format", "swid"); r.code != exitUsage || !strings.Contains(r.stderr, "want spdx, cyclonedx or none") {
		t.Errorf("an unknown --sbom-format: exit %d\n%s", r.code, r.stderr)
	}
}

// cycloneDXCheck validates the CycloneDX 1.6 JSON file named by its argument with
// cyclonedx-python-lib's strict JSON schema validator.
const cycloneDXCheck = `
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if err:
    sys.exit("invalid: %s" % err)
`

// checkWith runs an outside validator and fails the test unless it accepts.
func checkWith(t *testing.T, tool string, args ...string) {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s rejects the document: %v\n%s", filepath.Base(tool), strings.Join(args[:len(args)-1], " "), err, out)
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageContents reads an image's flattened file system for its Python distributions
// (name==version, from each .dist-info directory's name) and its installed Debian packages
// (name=version, from dpkg's status), each sorted.
func imageContents(t *testing.T, fs io.ReadCloser) (dists, debs []string) {
	t.Helper()
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if dir, base := path.Split(name); base == "METADATA" && strings.HasSuffix(dir, ".dist-info/") {
			stem := strings.TrimSuffix(path.Base(dir), ".dist-info")
			i := strings.LastIndex(stem, "-")
			dists = append(dists, normalise(stem[:i])+"=="+stem[i+1:])
		}
		if name == "var/lib/dpkg/status" {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			for _, para := range strings.Split(string(data), "\n\n") {
				fields := map[string]string{}
				for _, line := range strings.Split(para, "\n") {
					if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
						fields[k] = v
					}
				}
				if fields["Package"] != "" && strings.HasSuffix(fields["Status"], " installed") {
					debs = append(debs, fields["Package"]+"="+fields["Version"])
				}
			}
		}
	}
	slices.Sort(dists)
	slices.Sort(debs)
	return dists, debs
}

// normalise is a distribution name as the package index compares them (PEP 503).
func normalise(n string) string {
	n = strings.ToLower(n)
	for _, sep := range []string{"_", "."} {
		n = strings.ReplaceAll(n, sep, "-")
	}
	return n
}

// TestEvidence: pyship publish attaches a passing smoke-test statement and SLSA
// provenance beside the bill of materials, all about the pushed digest, and pyship verify
// passes it; an image pushed without a smoke test fails pyship verify, which names what it
// lacks.
func TestEvidence(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	repo := reg + "/e2e/evidence-" + uniqueTag()
	env := []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}

	pub := pyship(t, env, "publish", src, "--image", repo+":v1")
	pushed := builtDigest(t, pub)
	ok := pyship(t, env, "verify", repo+":v1")
	if ok.code != 0 || strings.Count(ok.stdout, "ok ") != 3 {
		t.Fatalf("pyship verify of a published image: exit %d\n%s\n%s", ok.code, ok.stdout, ok.stderr)
	}

	// The statements, read as a consumer would: through the referrers.
	ref, err := name.ParseReference(repo + "@" + pushed.String())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(ref.Context().Digest(pushed.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	predicates := map[string]string{}
	for _, d := range m.Manifests {
		if d.ArtifactType != "application/vnd.in-toto+json" {
			continue
		}
		img, err := remote.Image(ref.Context().Digest(d.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("a statement artifact has %d layers (%v)", len(ls), err)
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		var st struct {
			Subject []struct {
				Digest map[string]string
			}
			PredicateType string
		}
		if err := json.Unmarshal(data, &st); err != nil || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != pushed.Hex {
			t.Errorf("a statement is not about the pushed image: %s", data)
		}
		predicates[st.PredicateType] = string(data)
	}
	prov := predicates["https://slsa.dev/provenance/v1"]
	for _, want := range []string{`"name": "base"`, `"name": "requirements.txt"`, `"pyship": `, `"plan": {`} {
		if !strings.Contains(prov, want) {
			t.Errorf("the provenance lacks %s:\n%s", want, prov)
		}
	}
	smoke := predicates["https://github.com/pyship/pyship/smoke-test/v1"]
	for _, want := range []string{`"verdict": "pass"`, `"status": 200`, `"memoryPeakBytes": `, `"method": "GET"`} {
		if !strings.Contains(smoke, want) {
			t.Errorf("the smoke-test statement lacks %s:\n%s", want, smoke)
		}
	}

	// Another image, pushed without a smoke test: pyship verify says what is missing.
	f, err := os.OpenFile(filepath.Join(src, "app.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n# changed\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	untested := repo + ":untested"
	builtDigest(t, pyship(t, env, "build", src, "--push", "--image", untested))
	bad := pyship(t, env, "verify", untested)
	if bad.code != exitVerify || !strings.Contains(bad.stdout, "FAILED smoke test") || !strings.Contains(bad.stderr, "does not carry") {
		t.Errorf("pyship verify of an image pushed without a smoke test: exit %d\n%s\n%s", bad.code, bad.stdout, bad.stderr)
	}
}
