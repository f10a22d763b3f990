package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// in-toto statements (https://in-toto.io/Statement/v1) about an image: its provenance
// (SLSA v1) and the result of its smoke test. Each is attached like the bill of materials,
// as an artifact of type InTotoMediaType whose manifest names the predicate type in the
// PredicateAnnotation.
const (
	InTotoMediaType     types.MediaType = "application/vnd.in-toto+json"
	PredicateAnnotation                 = "in-toto.io/predicate-type"

	statementType = "https://in-toto.io/Statement/v1"
	// ProvenancePredicate is SLSA's provenance, version 1.
	ProvenancePredicate = "https://slsa.dev/provenance/v1"
	// SmokePredicate is pyship's record of a smoke test.
	SmokePredicate = "https://github.com/pyship/pyship/smoke-test/v1"
	// buildType names how pyship builds, for SLSA's buildDefinition.
	buildType = "https://github.com/pyship/pyship/build/v1"
	builderID = "https://github.com/pyship/pyship"
)

// Statement is an in-toto statement.
type Statement struct {
	Type          string             `json:"_type"`
	Subject       []StatementSubject `json:"subject"`
	PredicateType string             `json:"predicateType"`
	Predicate     json.RawMessage    `json:"predicate"`
}

// StatementSubject is what a statement is about: the image, by digest.
type StatementSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// statement writes an in-toto statement of predicateType about s.
func statement(s Subject, predicateType string, predicate any) ([]byte, error) {
	p, err := encode(predicate)
	if err != nil {
		return nil, err
	}
	name := s.Repository
	if name == "" {
		name = s.imageName()
	}
	return encode(Statement{
		Type:          statementType,
		Subject:       []StatementSubject{{Name: name, Digest: map[string]string{s.Digest.Algorithm: s.Digest.Hex}}},
		PredicateType: predicateType,
		Predicate:     bytes.TrimSpace(p),
	})
}

// encode is JSON as pyship writes its documents: indented, '&' and '<' as they are.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BuildInputs are what a build read, for its provenance.
type BuildInputs struct {
	// Source is the repository's URL, without credentials, and Revision its commit;
	// both empty outside a git checkout.
	Source, Revision string
	// Base is the base image by digest (REPOSITORY@sha256:...).
	Base string
	// Files are the dependency files the install read, by path in the repository, with
	// their sha256.
	Files []InputFile
	// Plan is the build's plan, as pyship plan --json prints it.
	Plan json.RawMessage
	// Invocation identifies the CI run that built the image (a GitHub Actions run's URL),
	// when there is one.
	Invocation string
}

// InputFile is a file a build read.
type InputFile struct {
	Path, SHA256 string
}

type slsaProvenance struct {
	BuildDefinition slsaBuildDefinition `json:"buildDefinition"`
	RunDetails      slsaRunDetails      `json:"runDetails"`
}

type slsaBuildDefinition struct {
	BuildType            string           `json:"buildType"`
	ExternalParameters   map[string]any   `json:"externalParameters"`
	InternalParameters   map[string]any   `json:"internalParameters,omitempty"`
	ResolvedDependencies []slsaDescriptor `json:"resolvedDependencies"`
}

type slsaDescriptor struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

type slsaRunDetails struct {
	Builder  slsaBuilder   `json:"builder"`
	Metadata *slsaMetadata `json:"metadata,omitempty"`
}

type slsaBuilder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version"`
}

type slsaMetadata struct {
	InvocationID string `json:"invocationId"`
}

// Provenance writes the SLSA v1 provenance of the image s, built from in. It holds no
// time: the same build gives the same statement.
func Provenance(s Subject, in BuildInputs) ([]byte, error) {
	external := map[string]any{}
	if s.Repository != "" {
		external["image"] = s.Repository
	}
	var deps []slsaDescriptor
	if in.Source != "" {
		source := map[string]string{"uri": in.Source}
		if in.Revision != "" {
			source["revision"] = in.Revision
		}
		external["source"] = source
		if in.Revision != "" {
			deps = append(deps, slsaDescriptor{Name: "source", URI: "git+" + in.Source + "@" + in.Revision, Digest: map[string]string{"gitCommit": in.Revision}})
		}
	}
	if repo, digest, ok := cutDigest(in.Base); ok {
		deps = append(deps, slsaDescriptor{Name: "base", URI: "oci://" + repo, Digest: digest})
	}
	for _, f := range in.Files {
		deps = append(deps, slsaDescriptor{Name: f.Path, URI: "file:" + f.Path, Digest: map[string]string{"sha256": f.SHA256}})
	}
	p := slsaProvenance{
		BuildDefinition: slsaBuildDefinition{
			BuildType: buildType, ExternalParameters: external, ResolvedDependencies: deps,
		},
		RunDetails: slsaRunDetails{Builder: slsaBuilder{ID: builderID, Version: map[string]string{"pyship": s.Tool}}},
	}
	if len(in.Plan) > 0 {
		p.BuildDefinition.InternalParameters = map[string]any{"plan": in.Plan}
	}
	if in.Invocation != "" {
		p.RunDetails.Metadata = &slsaMetadata{InvocationID: in.Invocation}
	}
	return statement(s, ProvenancePredicate, p)
}

// cutDigest splits REPOSITORY@ALG:HEX.
func cutDigest(ref string) (string, map[string]string, bool) {
	i := strings.LastIndex(ref, "@")
	if i < 0 {
		return "", nil, false
	}
	alg, hex, ok := strings.Cut(ref[i+1:], ":")
	if !ok {
		return "", nil, false
	}
	return ref[:i], map[string]string{alg: hex}, true
}

// SmokeResult is what a smoke test asked and what it found.
type SmokeResult struct {
	Request SmokeRequest `json:"request"`
	// Verdict is "pass" or "fail"; Failure names the kind of failure, Reason says it.
	Verdict string `json:"verdict"`
	Failure string `json:"failure,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Status is the answer's HTTP status, FirstResponseMS the time from the app's start
	// to its first answer.
	Status          int     `json:"status,omitempty"`
	FirstResponseMS float64 `json:"timeToFirstResponseMs,omitempty"`
	Usage           struct {
		MemoryPeakBytes uint64  `json:"memoryPeakBytes"`
		CPUSeconds      float64 `json:"cpuSeconds"`
	} `json:"usage"`
	Limits struct {
		MemoryBytes int64   `json:"memoryBytes"`
		CPUs        float64 `json:"cpus"`
		Pids        int64   `json:"pids"`
	} `json:"limits"`
	// Finished is when the test ended.
	Finished time.Time `json:"-"`
}

// SmokeRequest is the request a smoke test makes, and what it expects.
type SmokeRequest struct {
	Method         string `json:"method"`
	Path           string `json:"path"`
	Port           int    `json:"port"`
	ExpectedStatus int    `json:"expectedStatus,omitempty"`
	ExpectedBody   string `json:"expectedBody,omitempty"`
}

type smokePredicate struct {
	Tester   slsaBuilder `json:"tester"`
	Finished string      `json:"finishedOn"`
	SmokeResult
}

// SmokeTest writes the statement that the image s passed (or failed) the smoke test r.
func SmokeTest(s Subject, r SmokeResult) ([]byte, error) {
	return statement(s, SmokePredicate, smokePredicate{
		Tester:      slsaBuilder{ID: builderID, Version: map[string]string{"pyship": s.Tool}},
		Finished:    r.Finished.UTC().Format(time.RFC3339),
		SmokeResult: r,
	})
}

// ReadStatement reads an in-toto statement and checks that it is one.
func ReadStatement(data []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.Type != statementType {
		return nil, errNotStatement
	}
	return &st, nil
}

var errNotStatement = errors.New("not an in-toto statement (its _type is not " + statementType + ")")
