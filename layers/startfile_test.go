package layers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pyship/pyship/plan"
)

func TestCheckStartFile(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cmd             []string
		inRepo, inImage bool
		wantMissing     bool
	}{
		{name: "in the image", cmd: []string{"python", "app.py"}, inRepo: true, inImage: true},
		{name: "ignored", cmd: []string{"python", "app.py"}, inRepo: true, wantMissing: true},
		{name: "not in the repository either", cmd: []string{"python", "app.py"}},
		{name: "not a script", cmd: []string{"gunicorn", "app:app"}, inRepo: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			source, tree := t.TempDir(), t.TempDir()
			if tc.inRepo {
				os.WriteFile(filepath.Join(source, "app.py"), nil, 0o644)
			}
			if tc.inImage {
				os.WriteFile(filepath.Join(tree, "app.py"), nil, 0o644)
			}
			p := &plan.Plan{App: plan.App{Dir: "/app"}, Config: plan.Config{Cmd: tc.cmd, WorkingDir: "/app"}}
			err := checkStartFile(p, source, tree)
			var missing *MissingStartError
			if got := errors.As(err, &missing); got != tc.wantMissing {
				t.Errorf("checkStartFile: %v, want missing %v", err, tc.wantMissing)
			}
		})
	}
}
