//go:build linux && e2e

package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/sandbox"
)

// TestPlanMatrixEndToEnd: pyship plan --matrix on the monorepo fixture prints the matrix
// a workflow's plan job passes on, and each of its entries builds, as a matrix job does,
// with the entry's path; one is smoke-tested.
func TestPlanMatrixEndToEnd(t *testing.T) {
	reg := fixtures.Testbed(t)
	fixtures.TestbedPython(t, "3.12")
	src := copyFixture(t, "monorepo-matrix")
	cache := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}

	r := pyship(t, cache, "plan", "--matrix", src)
	if r.code != 0 {
		t.Fatalf("pyship plan --matrix: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "}\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout is not one line of JSON, as $GITHUB_OUTPUT takes it: %q", r.stdout)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var m Matrix
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	var paths []string
	for _, e := range m.Include {
		paths = append(paths, e.Path)
	}
	if want := []string{"services/api", "services/web", "tools/status"}; !slices.Equal(paths, want) {
		t.Fatalf("matrix of %v, want %v (tests/, examples/ and libs/ left out)", paths, want)
	}
	if again := pyship(t, cache, "plan", "--matrix", src); again.stdout != r.stdout {
		t.Errorf("a second run printed\n%s\nthe first\n%s", again.stdout, r.stdout)
	}

	out := t.TempDir()
	for _, e := range m.Include {
		t.Run(e.Name, func(t *testing.T) {
			dir := filepath.Join(src, filepath.FromSlash(e.Path))
			want, err := fixtures.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			image := reg + "/e2e/monorepo/" + e.ImageSuffix + ":" + uniqueTag()
			img := layoutImage(t, out, builtDigest(t, pyship(t, cache, "build", dir, "--oci-layout", out, "--image", image)))
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cf.Config.Cmd, want.Start) {
				t.Errorf("cmd %q, want %q", cf.Config.Cmd, want.Start)
			}
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			// The application layer holds this app alone, at /app.
			var app []string
			for _, l := range ls {
				for _, n := range tarNames(t, l) {
					if strings.HasPrefix(n, "app/") {
						app = append(app, n)
					}
				}
			}
			if !slices.Contains(app, "app/requirements.txt") || slices.ContainsFunc(app, func(n string) bool {
				return strings.HasPrefix(n, "app/services") || strings.HasPrefix(n, "app/tests") || strings.HasPrefix(n, "app/tools")
			}) {
				t.Errorf("the image's /app holds %v: want %s's files alone", app, e.Path)
			}
		})
	}

	// Building wrote nothing the hashes see: the next run's plan job skips every app.
	if after := pyship(t, cache, "plan", "--matrix", src); after.stdout != r.stdout {
		t.Errorf("after the builds the matrix is\n%s\nbefore them\n%s", after.stdout, r.stdout)
	}

	// A matrix job that runs the smoke test: the app answers as expect.json says.
	dir := filepath.Join(src, "services", "api")
	want, err := fixtures.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := pyship(t, cache, "test", "--json", "--grace", "2s", "--body", want.Body, dir)
	var report sandbox.Report
	if err := json.NewDecoder(bytes.NewReader([]byte(tr.stdout))).Decode(&report); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, tr.stdout)
	}
	if tr.code != 0 || report.Verdict != "pass" {
		t.Errorf("pyship test %s: exit %d, verdict %s (%s)", dir, tr.code, report.Verdict, report.Reason)
	}
}
