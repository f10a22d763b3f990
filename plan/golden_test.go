package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/fixtures"
)

var update = flag.Bool("update", false, "rewrite the golden plans (fixtures/*/plan.json)")

// TestFixturePlans plans every fixture app and compares the plan with its golden file and
// its expectations.
func TestFixturePlans(t *testing.T) {
	root := filepath.Join("..", "fixtures")
	apps, err := fixtures.Apps(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) < 10 {
		t.Fatalf("only %d fixture apps", len(apps))
	}
	for _, app := range apps {
		t.Run(app, func(t *testing.T) {
			dir := filepath.Join(root, filepath.FromSlash(app))
			want, err := fixtures.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			res, err := detect.Detect(context.Background(), os.DirFS(dir), detect.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Fixed options keep the golden files the same on every machine.
			p, err := New(res, Options{Platform: "linux/amd64"})
			if err != nil {
				t.Fatal(err)
			}
			python := p.Base.Python
			if want.PythonFromIndex && slices.Contains(res.PythonChoices, want.Python) {
				python = want.Python
			}
			if !slices.Equal(p.Config.Cmd, want.Start) || python != want.Python || p.Smoke.Port != want.Port {
				t.Errorf("plan: cmd %q python %s port %d; expect.json: %q %s %d", p.Config.Cmd, p.Base.Python, p.Smoke.Port, want.Start, want.Python, want.Port)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(p); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden := filepath.Join(dir, "plan.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantPlan, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./plan -update to write it)", err)
			}
			if d := fixtures.Diff(golden, wantPlan, "planned", got); d != "" {
				t.Errorf("plan differs from %s (go test ./plan -update rewrites it):\n%s", golden, d)
			}
		})
	}
}
