package layers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/sandbox"
)

// StepError reports a build step that failed, with its output.
type StepError struct {
	Step   string
	Source string
	Code   int
	Output string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("build step %s (from %s) exited with code %d:\n%s\nhint: the step runs like it would in the image, with the dependencies installed and the repository at %s; fix what its output names, or turn the step off in pyship.toml",
		e.Step, e.Source, e.Code, errorLines(e.Output), plan.AppDir)
}

// stepsLayer runs the plan's build steps on the base with the dependency layer and the
// repository (an overlay, so the user's files stay untouched), and returns what they wrote
// in the application directory as a layer, its directories owned as rules say.
func stepsLayer(ctx context.Context, p *plan.Plan, base v1.Image, root string, system []string, deps v1.Layer, appTree string, rules []dirRule, opts Options, log hclog.Logger) (v1.Layer, error) {
	venv, err := layerTree(deps, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	layersDir := filepath.Join(opts.CacheDir, "layers")
	if err := os.MkdirAll(layersDir, 0o755); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(layersDir, ".steps-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	srcScratch := filepath.Join(scratch, "src")
	env := mergeEnv(envOf(base), append(append([]string(nil), p.Config.Env...),
		"HOME=/root", "PYTHONHASHSEED=0", "SOURCE_DATE_EPOCH="+strconv.FormatInt(opts.Epoch.Unix(), 10)))
	mounts := []sandbox.Mount{{Type: "overlay", Source: appTree, Target: p.App.Dir, Scratch: srcScratch}}
	egress, _ := buildEgress(log)
	for _, st := range p.BuildSteps {
		out := newTail(outputTail)
		w := io.MultiWriter(out, logWriter(log))
		stepCtx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
		err := sandbox.Exec(stepCtx, sandbox.ExecSpec{
			Root: root, Over: append([]string{venv}, system...), Upper: filepath.Join(scratch, "upper"),
			Args: st.Command, Env: env, Dir: p.App.Dir, Hostname: "pyship-build", Mounts: mounts,
			Egress: egress, Limits: opts.BuildLimits, Stdout: w, Stderr: w,
		})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, &TimeoutError{What: "build step " + st.Name + " (from " + st.Source + ")", Limit: opts.StepTimeout, Output: out.String()}
		}
		var exit *sandbox.ExitError
		if errors.As(err, &exit) {
			return nil, &StepError{Step: st.Name, Source: st.Source, Code: exit.Code, Output: out.String()}
		}
		if err != nil {
			return nil, err
		}
	}
	written := filepath.Join(srcScratch, "upper")
	return writeLayerFile(layersDir, "", opts.Epoch, rules, func(w *normalisingWriter) error {
		return writeTree(w, written, treeOptions{
			Prefix: p.App.Dir,
			Skip: func(rel string, d fs.DirEntry) bool {
				// Overlay whiteouts (files a step deleted) and byte code stay out.
				return d.Type()&fs.ModeCharDevice != 0 || d.Name() == "__pycache__" || strings.HasSuffix(rel, ".pyc")
			},
			Warn: log.Warn,
		})
	})
}
