package main

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pyship/pyship/attest"
)

// TestVerifyEvidence: pyship verify passes an image only with a passing smoke-test
// statement, a bill of materials and provenance, each about its own digest.
func TestVerifyEvidence(t *testing.T) {
	digest, _ := v1.NewHash("sha256:" + strings.Repeat("1", 64))
	other, _ := v1.NewHash("sha256:" + strings.Repeat("2", 64))
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digest, Size: 100}
	artifact := func(mt types.MediaType, data []byte, predicate string) v1.Image {
		var ann map[string]string
		if predicate != "" {
			ann = map[string]string{attest.PredicateAnnotation: predicate}
		}
		a, err := attest.Artifact(desc, mt, data, time.Unix(0, 0), ann)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	about := func(d v1.Hash) attest.Subject { return attest.Subject{Digest: d, Tool: "test"} }
	sbom := func(d v1.Hash) v1.Image {
		data, err := attest.SBOM(attest.FormatSPDX, &attest.Inventory{}, about(d))
		if err != nil {
			t.Fatal(err)
		}
		return artifact(attest.SPDXMediaType, data, "")
	}
	prov := func(d v1.Hash) v1.Image {
		data, err := attest.Provenance(about(d), attest.BuildInputs{})
		if err != nil {
			t.Fatal(err)
		}
		return artifact(attest.InTotoMediaType, data, attest.ProvenancePredicate)
	}
	smoke := func(d v1.Hash, verdict string) v1.Image {
		data, err := attest.SmokeTest(about(d), attest.SmokeResult{Verdict: verdict, Finished: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return artifact(attest.InTotoMediaType, data, attest.SmokePredicate)
	}
	for _, tc := range []struct {
		name string
		arts []v1.Image
		// failed names the checks that must fail.
		failed []string
	}{
		{"all three", []v1.Image{sbom(digest), prov(digest), smoke(digest, "pass")}, nil},
		{"a failed smoke test", []v1.Image{sbom(digest), prov(digest), smoke(digest, "fail")}, []string{"smoke test"}},
		{"one failed, one passed", []v1.Image{sbom(digest), prov(digest), smoke(digest, "fail"), smoke(digest, "pass")}, nil},
		{"no smoke test (pyship build --push)", []v1.Image{sbom(digest), prov(digest)}, []string{"smoke test"}},
		{"statements about another image", []v1.Image{sbom(other), prov(other), smoke(other, "pass")}, []string{"smoke test", "bill of materials", "provenance"}},
		{"nothing", nil, []string{"smoke test", "bill of materials", "provenance"}},
		{"good, then about another image", []v1.Image{sbom(digest), sbom(other), prov(digest), prov(other), smoke(digest, "pass"), smoke(other, "pass")}, nil},
		{"about another image, then good", []v1.Image{sbom(other), sbom(digest), prov(other), prov(digest), smoke(other, "pass"), smoke(digest, "pass")}, nil},
		{"an SBOM-typed artifact with no layer", []v1.Image{noLayers(t, desc), prov(digest), smoke(digest, "pass")}, []string{"bill of materials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []string
			for _, r := range verifyEvidence(digest, tc.arts) {
				if r.problem != "" {
					failed = append(failed, r.what)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
				t.Errorf("failed checks %v, want %v", failed, tc.failed)
			}
		})
	}
}

// noLayers is an artifact of the SPDX type whose manifest has no layer, as anyone who may
// push to the repository could attach.
func noLayers(t *testing.T, subject v1.Descriptor) v1.Image {
	t.Helper()
	a, err := attest.Artifact(subject, attest.SPDXMediaType, []byte("{}"), time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	m.Layers = nil
	return manifestOnly{Image: a, m: m}
}

type manifestOnly struct {
	v1.Image
	m *v1.Manifest
}

func (i manifestOnly) Manifest() (*v1.Manifest, error) { return i.m, nil }
