package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
)

func runPlan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var c common
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON on stdout")
	matrix := fs.Bool("matrix", false, "find every app under PATH and print a GitHub Actions matrix of them as JSON on stdout")
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *matrix {
		if *asJSON {
			return usagef("--matrix prints JSON already; leave out --json")
		}
		return printMatrix(ctx, path, c)
	}
	p, _, _, err := detectAndPlan(ctx, path, c, c.logger())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(p)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tVALUE\tFROM\tWHY")
	for _, d := range p.Decisions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.What, d.Value, d.Source, d.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range p.Dependencies.Steps {
		fmt.Printf("install (%s): %s\n", st.Kind, st.Line())
	}
	for _, st := range p.BuildSteps {
		fmt.Printf("build step (%s): %s\n", st.Name, strings.Join(st.Command, " "))
	}
	for _, w := range p.Warnings {
		fmt.Printf("warning: %s\n", w)
	}
	fmt.Printf("image: cmd %s, user %s, port %s, workdir %s\n", strings.Join(p.Config.Cmd, " "), p.Config.User, strings.Join(p.Config.ExposedPorts, ","), p.Config.WorkingDir)
	return nil
}

// Matrix is what `pyship plan --matrix` prints: the shape GitHub Actions takes as
// strategy.matrix, one job per app.
type Matrix struct {
	Include []MatrixEntry `json:"include"`
}

// MatrixEntry is one app of the matrix.
type MatrixEntry struct {
	Name string `json:"name"`
	// Path is the app's directory, relative to the root given to pyship plan --matrix.
	Path string `json:"path"`
	// ImageSuffix is valid as the last component of an image's repository.
	ImageSuffix string `json:"image-suffix"`
	// PlanHash changes when what the app's image holds changes: see planHash.
	PlanHash string `json:"plan-hash"`
}

// printMatrix finds the apps under root, plans each, and prints the matrix on one line,
// as $GITHUB_OUTPUT takes it.
func printMatrix(ctx context.Context, root string, c common) error {
	log := c.logger()
	m, err := findMatrix(ctx, root, c, log)
	if err != nil {
		return err
	}
	out, err := json.Marshal(m)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// maxMatrixJobs is how many jobs GitHub Actions makes of one matrix.
const maxMatrixJobs = 256

// findMatrix finds the apps under root and plans each as pyship build would.
func findMatrix(ctx context.Context, root string, c common, log hclog.Logger) (*Matrix, error) {
	dir, err := filepath.Abs(root)
	if err != nil {
		return nil, usagef("%v", err)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fail(exitDetect, fmt.Errorf("%q does not exist\nhint: give the directory that holds your apps, like pyship plan --matrix .", root))
	case err != nil:
		return nil, fail(exitDetect, err)
	case !st.IsDir():
		return nil, fail(exitDetect, fmt.Errorf("%q is not a directory\nhint: give the directory that holds your apps, like pyship plan --matrix .", root))
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fail(exitDetect, err)
	}
	defer r.Close()
	start := time.Now()
	fsys := detect.RootFS(r)
	ig, err := layers.NewIgnorer(fsys)
	if err != nil {
		return nil, inDir(dir, fail(exitDetect, err))
	}
	apps, err := detect.FindApps(ctx, fsys, detect.FindOptions{Logger: log, Ignored: ig.Ignored})
	if err != nil {
		return nil, inDir(dir, fail(exitDetect, err))
	}
	if len(apps) == 0 {
		return nil, inDir(dir, fail(exitDetect, &detect.Error{
			Msg: fmt.Sprintf("no Python application found in %q or below it", root),
			Hint: fmt.Sprintf("pyship plan --matrix looks for directories with a dependency file (requirements.txt, pyproject.toml, setup.py, a lock file) and a start pyship finds, "+
				"up to %d levels down, outside %s, hidden directories, virtualenvs and what .gitignore or .dockerignore leave out; name others in [matrix] include in pyship.toml",
				detect.MaxAppDepth, strings.Join(detect.NotApps, ", ")),
		}))
	}
	log.Info("found apps", "count", len(apps), "took", since(start))
	if len(apps) > maxMatrixJobs {
		log.Warn(fmt.Sprintf("%d apps: GitHub Actions runs at most %d jobs from one matrix", len(apps), maxMatrixJobs),
			"hint", "give pyship plan --matrix one part of the repository per plan job, or leave apps out with [matrix] exclude in pyship.toml")
	}
	m := &Matrix{Include: make([]MatrixEntry, 0, len(apps))}
	for _, app := range apps {
		p, appDir, _, err := detectAndPlan(ctx, filepath.Join(root, filepath.FromSlash(app.Path)), c, log.Named(app.Name))
		if err != nil {
			return nil, err
		}
		sum, err := planHash(p, appDir)
		if err != nil {
			return nil, inDir(appDir, fail(exitDetect, err))
		}
		m.Include = append(m.Include, MatrixEntry{Name: app.Name, Path: app.Path, ImageSuffix: app.Name, PlanHash: sum})
	}
	return m, nil
}

// commitLabels name the commit an image is built from: they change with every commit, so
// the plan hash leaves them out.
var commitLabels = []string{"org.opencontainers.image.revision", "org.opencontainers.image.source"}

// toolVersion names the pyship that plans, for the plan hash (another pyship may build
// another image from the same plan): the version set at link time, else what the Go
// toolchain recorded (go install's module version; go build's commit).
func toolVersion() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			v += " " + s.Key + "=" + s.Value
		}
	}
	return v
}

// planHash is "sha256:" and the digest of what decides an app's image: pyship's version,
// the plan as JSON, and the application tree as its layer would hold it (layers.HashApp).
// It leaves out what only names or dates the commit (commitLabels, and the commit's time,
// which stamps the files and the image), so that a commit that changes nothing of the
// app, only its siblings, keeps its hash.
func planHash(p *plan.Plan, dir string) (string, error) {
	q := *p
	q.Config.Labels = maps.Clone(p.Config.Labels)
	for _, l := range commitLabels {
		delete(q.Config.Labels, l)
	}
	h := sha256.New()
	fmt.Fprintf(h, "pyship plan-hash v1\nversion %s\n", toolVersion())
	if err := json.NewEncoder(h).Encode(&q); err != nil {
		return "", err
	}
	if err := layers.HashApp(h, dir, q.App); err != nil {
		return "", fmt.Errorf("hashing the application tree of %q: %w", dir, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
