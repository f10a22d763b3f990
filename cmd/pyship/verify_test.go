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
	} {
		var failed []string
		for _, r := range verifyEvidence(digest, tc.arts) {
			if r.problem != "" {
				failed = append(failed, r.what)
			}
		}
		if strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
			t.Errorf("%s: failed checks %v, want %v", tc.name, failed, tc.failed)
		}
	}
}
