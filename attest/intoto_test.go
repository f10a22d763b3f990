package attest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestProvenance(t *testing.T) {
	d, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	s := Subject{Repository: "ghcr.io/me/app", Digest: d, Created: time.Unix(0, 0), Tool: "1.2.3"}
	in := BuildInputs{
		Source: "https://github.com/me/app", Revision: strings.Repeat("c", 40),
		Base:  "127.0.0.1:5000/library/python@sha256:" + strings.Repeat("d", 64),
		Files: []InputFile{{Path: "requirements.txt", SHA256: strings.Repeat("e", 64)}},
		Plan:  json.RawMessage(`{"base":{"ref":"python:3.13-slim"}}`),
	}
	a, err := Provenance(s, in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Provenance(s, in)
	if string(a) != string(b) {
		t.Errorf("two provenance statements of one build differ")
	}
	st, err := ReadStatement(a)
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != ProvenancePredicate || len(st.Subject) != 1 || st.Subject[0].Name != "ghcr.io/me/app" || st.Subject[0].Digest["sha256"] != d.Hex {
		t.Errorf("statement %+v", st)
	}
	var p struct {
		BuildDefinition struct {
			BuildType            string
			ExternalParameters   map[string]any
			InternalParameters   struct{ Plan map[string]any }
			ResolvedDependencies []struct {
				Name, URI string
				Digest    map[string]string
			}
		}
		RunDetails struct {
			Builder struct {
				ID      string
				Version map[string]string
			}
		}
	}
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	for _, r := range p.BuildDefinition.ResolvedDependencies {
		for alg, v := range r.Digest {
			deps[r.Name] = r.URI + " " + alg + ":" + v
		}
	}
	for name, want := range map[string]string{
		"source":           "git+https://github.com/me/app@" + in.Revision + " gitCommit:" + in.Revision,
		"base":             "oci://127.0.0.1:5000/library/python sha256:" + strings.Repeat("d", 64),
		"requirements.txt": "file:requirements.txt sha256:" + strings.Repeat("e", 64),
	} {
		if deps[name] != want {
			t.Errorf("resolved dependency %s = %q, want %q", name, deps[name], want)
		}
	}
	if p.BuildDefinition.InternalParameters.Plan["base"] == nil || p.RunDetails.Builder.Version["pyship"] != "1.2.3" || p.BuildDefinition.BuildType != buildType {
		t.Errorf("provenance %+v", p)
	}
	if strings.Contains(string(a), "invocationId") {
		t.Errorf("a build outside CI names an invocation")
	}
}

func TestSmokeStatement(t *testing.T) {
	d, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	r := SmokeResult{Request: SmokeRequest{Method: "GET", Path: "/health", Port: 8080, ExpectedStatus: 200}, Verdict: "pass", Status: 200, FirstResponseMS: 412.5,
		Finished: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	r.Usage.MemoryPeakBytes, r.Limits.MemoryBytes = 30<<20, 512<<20
	data, err := SmokeTest(Subject{Digest: d, Tool: "1.2.3"}, r)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatement(data)
	if err != nil || st.PredicateType != SmokePredicate || st.Subject[0].Digest["sha256"] != d.Hex {
		t.Fatalf("statement %+v, %v", st, err)
	}
	for _, want := range []string{`"verdict": "pass"`, `"path": "/health"`, `"timeToFirstResponseMs": 412.5`, `"memoryPeakBytes": 31457280`, `"memoryBytes": 536870912`, `"finishedOn": "2026-11-29T12:00:00Z"`, `"pyship": "1.2.3"`} {
		if !strings.Contains(string(st.Predicate), want) {
			t.Errorf("the predicate lacks %s:\n%s", want, st.Predicate)
		}
	}
	if _, err := ReadStatement([]byte(`{"_type": "something else"}`)); err == nil {
		t.Errorf("a document that is not an in-toto statement was read as one")
	}
}
