package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
//
// The layer is cached, as a Dockerfile's RUN is, by everything the steps see: the base,
// the system trees, the dependency and application layers, the steps, the environment and
// the owners rules give; with a registry cache, there too (unless askRegistry is false:
// it was asked already). rootFS gives the base's file system, for the steps.
func stepsLayer(ctx context.Context, p *plan.Plan, base v1.Image, rootFS func() (string, error), system []string, deps, app v1.Layer, appTree string, rules []dirRule, askRegistry bool, opts Options) (v1.Layer, bool, error) {
	log := opts.Logger
	layersDir := filepath.Join(opts.CacheDir, "layers")
	depsDigest, err := deps.Digest()
	if err != nil {
		return nil, false, err
	}
	key, err := stepsKey(p, base, system, depsDigest, app, rules, opts)
	if err != nil {
		return nil, false, err
	}
	if l, err := cachedLayer(layersDir, key, log); l != nil || err != nil {
		return l, l != nil, err
	}
	traceKey, err := stepsTraceKey(p, base, system, depsDigest, rules, opts)
	if err != nil {
		return nil, false, err
	}
	if l := unchangedSteps(layersDir, traceKey, appTree, log); l != nil {
		// Under this build's key too, so the next build finds it at once.
		if d, err := l.Digest(); err == nil {
			_ = writeFileAtomic(filepath.Join(layersDir, key+keySuffix), []byte(d.String()+"\n"))
		}
		log.Info("build steps unchanged: none of the files they read changed")
		return l, true, nil
	}
	if opts.CacheRepo != nil && askRegistry {
		if l, _, ok := fromRegistryCache(ctx, key, "build steps", below(p.App.Dir), layersDir, false, opts); ok {
			return l, true, nil
		}
		if e := tracedEntry(ctx, traceKey, key, appTree, opts); e != nil {
			if l := e.pull(ctx, layersDir, below(p.App.Dir), false, opts); l != nil {
				return l, true, nil
			}
		}
	}
	root, err := rootFS()
	if err != nil {
		return nil, false, err
	}
	venv, err := layerTree(deps, opts.CacheDir)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(layersDir, 0o755); err != nil {
		return nil, false, err
	}
	scratch, err := os.MkdirTemp(layersDir, ".steps-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(scratch)
	srcScratch := filepath.Join(scratch, "src")
	env := mergeEnv(envOf(base), append(append([]string(nil), p.Config.Env...),
		"HOME=/root", "PYTHONHASHSEED=0", "SOURCE_DATE_EPOCH="+strconv.FormatInt(opts.Epoch.Unix(), 10)))
	mounts := []sandbox.Mount{{Type: "overlay", Source: appTree, Target: p.App.Dir, Scratch: srcScratch}}
	egress, _ := buildEgress(log)
	trace := &sandbox.Trace{Under: p.App.Dir}
	for _, st := range p.BuildSteps {
		out := newTail(outputTail)
		w := io.MultiWriter(out, logWriter(log))
		stepCtx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
		err := sandbox.Exec(stepCtx, sandbox.ExecSpec{
			Root: root, Over: append([]string{venv}, system...), Upper: filepath.Join(scratch, "upper"),
			Args: st.Command, Env: env, Dir: p.App.Dir, Hostname: "pyship-build", Mounts: mounts,
			Egress: egress, Limits: opts.BuildLimits, Stdout: w, Stderr: w, Trace: trace,
		})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, false, &TimeoutError{What: "build step " + st.Name + " (from " + st.Source + ")", Limit: opts.StepTimeout, Output: out.String()}
		}
		var exit *sandbox.ExitError
		if errors.As(err, &exit) {
			return nil, false, &StepError{Step: st.Name, Source: st.Source, Code: exit.Code, Output: out.String()}
		}
		if err != nil {
			return nil, false, err
		}
	}
	written := filepath.Join(srcScratch, "upper")
	// What the steps wrote is scratch: its files move into the layer's tree, which the
	// smoke test runs over.
	l, err := writeLayerTree(layersDir, key, opts.Epoch, rules, opts.CacheDir, tapped(opts.Tap), opts.Logger, func(w *normalisingWriter) error {
		return writeTree(w, written, treeOptions{
			Prefix: p.App.Dir,
			Skip: func(rel string, d fs.DirEntry) bool {
				// Overlay whiteouts (files a step deleted) and byte code stay out.
				return d.Type()&fs.ModeCharDevice != 0 || d.Name() == "__pycache__" || strings.HasSuffix(rel, ".pyc")
			},
			Warn: log.Warn,
		})
	})
	if err != nil {
		return nil, false, err
	}
	kept := time.Now()
	read, why := keepStepsRead(layersDir, traceKey, key, trace, appTree, p.App.Dir, append(append([]string{venv}, system...), root))
	if why != "" {
		log.Debug("the build steps' reads are not kept: they run again after any change to the repository", "why", why)
	} else {
		log.Debug("the build steps' reads kept", "took", time.Since(kept).Round(time.Millisecond))
	}
	if opts.CacheRepo != nil {
		platform, err := v1.ParsePlatform(p.Platform)
		if err != nil {
			return nil, false, err
		}
		toRegistryCache(ctx, key, "build steps", l, nil, "", *platform, opts)
		if read != nil {
			// Under the key of all but the application, for a runner whose repository
			// differs only in what the steps never read.
			toRegistryCache(ctx, traceKey, "build steps' reads", l, nil, string(read), *platform, opts)
		}
	}
	return l, false, nil
}

// stepsKey is the cache key of the build steps' layer, above the dependency layer of
// digest d.
func stepsKey(p *plan.Plan, base v1.Image, system []string, d v1.Hash, app v1.Layer, rules []dirRule, opts Options) (string, error) {
	a, err := app.Digest()
	if err != nil {
		return "", err
	}
	return stepsKeyOf(p, base, system, d, a.String(), rules, opts)
}

// stepsTraceKey is the key of the build steps' trace (stepsread.go): stepsKey with the
// application layer left out, since what the steps read of it stands instead.
func stepsTraceKey(p *plan.Plan, base v1.Image, system []string, d v1.Hash, rules []dirRule, opts Options) (string, error) {
	k, err := stepsKeyOf(p, base, system, d, "traced v1", rules, opts)
	return "stepsread-" + strings.TrimPrefix(k, "steps-"), err
}

// stepsKeyOf is stepsKey with the application layer's digest given as app.
func stepsKeyOf(p *plan.Plan, base v1.Image, system []string, d v1.Hash, app string, rules []dirRule, opts Options) (string, error) {
	h := sha256.New()
	b, err := base.Digest()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "pyship build steps v1\n%s\nbase %s\ndeps %s\napp %s\ndir %s\nepoch %d\n", layerFormat, b, d, app, p.App.Dir, opts.Epoch.Unix())
	for _, s := range system {
		fmt.Fprintf(h, "system %s\n", filepath.Base(s))
	}
	for _, st := range p.BuildSteps {
		fmt.Fprintf(h, "step %q %q %q\n", st.Name, st.Command, st.Data)
	}
	for _, e := range mergeEnv(envOf(base), p.Config.Env) {
		fmt.Fprintf(h, "env %q\n", e)
	}
	for _, r := range rules {
		fmt.Fprintf(h, "rule %+v\n", r)
	}
	return "steps-" + hex.EncodeToString(h.Sum(nil)), nil
}
