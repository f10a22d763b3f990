package layers

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pyship/pyship/plan"
)

// MissingStartError reports a start command whose script is in the repository but not in
// the application layer: an ignore rule leaves it out, and the app could not start.
type MissingStartError struct {
	File string
}

func (e *MissingStartError) Error() string {
	return fmt.Sprintf("the start command runs %s, which is in the repository but not in the image: an ignore rule (.dockerignore, .gitignore, or exclude in pyship.toml) leaves it out\nhint: remove the rule, or add include = [%q] to pyship.toml", e.File, e.File)
}

// checkStartFile makes sure the script the image's command runs with python is in the
// application tree when the repository has it.
func checkStartFile(p *plan.Plan, source, appTree string) error {
	script := startScript(p.Config.Cmd)
	if script == "" {
		return nil
	}
	dir := p.Config.WorkingDir
	if dir == "" {
		dir = p.App.Dir
	}
	inImage := path.Join(dir, script)
	rel, ok := strings.CutPrefix(inImage, strings.TrimSuffix(p.App.Dir, "/")+"/")
	if !ok {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(appTree, filepath.FromSlash(rel))); err == nil {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(source, filepath.FromSlash(rel))); err != nil {
		return nil
	}
	return &MissingStartError{File: rel}
}

// startScript is the file of a "python[3] FILE.py ..." command.
func startScript(cmd []string) string {
	if len(cmd) < 2 {
		return ""
	}
	if b := path.Base(cmd[0]); b != "python" && b != "python3" {
		return ""
	}
	if !strings.HasSuffix(cmd[1], ".py") || strings.HasPrefix(cmd[1], "-") {
		return ""
	}
	return cmd[1]
}
