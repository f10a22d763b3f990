package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pyship/pyship/attest"
)

// runVerify checks that an image carries, for its own digest, a passing smoke-test
// statement, a bill of materials and provenance.
func runVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pyship verify", flag.ContinueOnError)
	var c common
	var rf registryFlags
	imageFlags(fs, &c, &rf)
	ref, err := parseOne(fs, args, "Usage: pyship verify [flags] REF\n\nChecks that the image REF (a registry reference, an OCI layout directory holding one\nimage, or DIR@sha256:...) carries, for its digest, a passing smoke-test statement, a bill\nof materials and provenance, as pyship publish attaches them.")
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	digest, arts, err := referrers(ctx, ref, &c, &rf)
	if err != nil {
		return evidenceError(ref, err)
	}
	results := verifyEvidence(digest, arts)
	var missing []string
	for _, r := range results {
		mark := "ok     "
		if r.problem != "" {
			mark = "FAILED "
			missing = append(missing, r.what+": "+r.problem)
		}
		fmt.Printf("%s%s: %s\n", mark, r.what, orText(r.problem, r.found))
	}
	if len(missing) > 0 {
		return fail(exitVerify, fmt.Errorf("%s@%s does not carry what pyship publish attaches:\n  %s\nhint: pyship publish attaches all three when the smoke test passes (a bill of materials unless --sbom-format none); pyship build --push attaches no smoke-test statement", ref, digest, strings.Join(missing, "\n  ")))
	}
	return nil
}

func orText(problem, found string) string {
	if problem != "" {
		return problem
	}
	return found
}

// verified is one check of pyship verify: what was looked for, what was found, or what is
// wrong.
type verified struct {
	what, found, problem string
}

// verifyEvidence checks the artifacts whose subject is the image digest.
func verifyEvidence(digest v1.Hash, arts []v1.Image) []verified {
	sbom := verified{what: "bill of materials", problem: "none attached"}
	prov := verified{what: "provenance", problem: "none attached"}
	smoke := verified{what: "smoke test", problem: "no statement attached"}
	for _, a := range arts {
		m, err := a.Manifest()
		if err != nil {
			continue
		}
		switch mt := m.ArtifactType; mt {
		case string(attest.SPDXMediaType), string(attest.CycloneDXMediaType):
			data, err := attest.ReadArtifact(a, types.MediaType(mt))
			if err == nil {
				err = describes(data, digest)
			}
			switch {
			case err == nil:
				sbom.found, sbom.problem = mt, ""
			case sbom.found == "":
				sbom.problem = err.Error()
			}
		case string(attest.InTotoMediaType):
			data, err := attest.ReadArtifact(a, attest.InTotoMediaType)
			var st *attest.Statement
			if err == nil {
				st, err = attest.ReadStatement(data)
			}
			if err == nil && !about(st, digest) {
				err = fmt.Errorf("a statement about another digest")
			}
			// A problem is reported only while nothing good was found: the order of an
			// image's referrers is the registry's.
			switch {
			case err != nil && m.Annotations[attest.PredicateAnnotation] == attest.SmokePredicate:
				if smoke.found == "" {
					smoke.problem = err.Error()
				}
			case err != nil:
				if prov.found == "" {
					prov.problem = err.Error()
				}
			case st.PredicateType == attest.ProvenancePredicate:
				prov.found, prov.problem = "SLSA v1 provenance", ""
			case st.PredicateType == attest.SmokePredicate && smoke.found == "":
				var p struct {
					Verdict, Reason, FinishedOn string
				}
				if err := json.Unmarshal(st.Predicate, &p); err != nil || p.Verdict != "pass" {
					// What the statement says is anyone's who could push to the repository:
					// quoted, and short.
					smoke.problem = fmt.Sprintf("the statement's verdict is %.20q (%.200q)", p.Verdict, p.Reason)
					continue
				}
				smoke.found, smoke.problem = fmt.Sprintf("passed, %.40q", p.FinishedOn), ""
			}
		}
	}
	return []verified{smoke, sbom, prov}
}

// about reports whether st's subject is the image digest.
func about(st *attest.Statement, digest v1.Hash) bool {
	for _, s := range st.Subject {
		if s.Digest[digest.Algorithm] == digest.Hex {
			return true
		}
	}
	return false
}

// describes checks that a bill of materials names the image digest as what it describes.
func describes(data []byte, digest v1.Hash) error {
	var doc struct {
		Packages []struct {
			SPDXID, VersionInfo string
		}
		Metadata struct {
			Component struct{ Version string }
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("the bill of materials is not JSON: %w", err)
	}
	for _, p := range doc.Packages {
		if p.SPDXID == "SPDXRef-image" && p.VersionInfo == digest.String() {
			return nil
		}
	}
	if doc.Metadata.Component.Version == digest.String() {
		return nil
	}
	return fmt.Errorf("the bill of materials describes another image")
}
