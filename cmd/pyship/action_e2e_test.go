//go:build linux && e2e

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"

	"github.com/pyship/pyship/fixtures"
)

// actionFile is action.yml as the harness reads it. Unknown keys are an error, so that a
// key added to action.yml that the harness would not honour (a step's working-directory,
// say) fails here rather than being ignored.
type actionFile struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Author      string            `yaml:"author"`
	Branding    map[string]string `yaml:"branding"`
	Inputs      map[string]struct {
		Description string `yaml:"description"`
		Required    bool   `yaml:"required"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	With  map[string]string `yaml:"with"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	Run   string            `yaml:"run"`
}

// standIns are the actions action.yml may use: the harness runs a stand-in for each, since
// GitHub's actions cannot be fetched here.
var standIns = map[string]bool{
	"actions/cache/restore@v4": true,
	"actions/cache/save@v4":    true,
}

// readAction decodes action.yml at the top of the repository.
func readAction(t *testing.T, repo string) actionFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, filepath.Join(repo, "action.yml"))))
	dec.KnownFields(true)
	var action actionFile
	if err := dec.Decode(&action); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return action
}

// TestActionFile checks what the harness and GitHub's runner rely on in action.yml, without
// running it: a composite action whose steps run bash or use actions the harness stands
// in for, conditions and expressions the harness evaluates, inputs that are required or
// have a default, and outputs that come from steps.
func TestActionFile(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	action := readAction(t, repo)
	if action.Name == "" || action.Description == "" {
		t.Errorf("action.yml needs a name and a description for the Marketplace: %+v", action)
	}
	if action.Runs.Using != "composite" {
		t.Errorf("runs.using is %q, want composite", action.Runs.Using)
	}
	if !action.Inputs["image"].Required {
		t.Errorf("input image is not required")
	}
	for name, in := range action.Inputs {
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if in.Required && in.Default != "" {
			t.Errorf("input %s is required and has a default %q", name, in.Default)
		}
	}
	ids := map[string]bool{}
	for i, st := range action.Runs.Steps {
		switch {
		case st.Uses != "" && st.Run != "":
			t.Errorf("step %d (%s) both uses an action and runs a script", i, st.Name)
		case st.Uses != "" && !standIns[st.Uses]:
			t.Errorf("step %d (%s) uses %s, which the harness has no stand-in for", i, st.Name, st.Uses)
		case st.Run != "" && st.Shell != "bash":
			t.Errorf("step %d (%s) runs in shell %q; a composite action's run step needs shell: bash", i, st.Name, st.Shell)
		case st.Uses == "" && st.Run == "":
			t.Errorf("step %d (%s) neither uses an action nor runs a script", i, st.Name)
		}
		if st.If != "" {
			if _, err := parseCondition(st.If); err != nil {
				t.Errorf("step %d (%s): %v", i, st.Name, err)
			}
		}
		for _, s := range append(slices.Collect(maps.Values(st.Env)), slices.Collect(maps.Values(st.With))...) {
			for _, m := range exprRe.FindAllStringSubmatch(s, -1) {
				if !operandRe.MatchString(m[1]) || strings.HasPrefix(m[1], "'") {
					t.Errorf("step %d (%s): expression %q is not one the harness knows", i, st.Name, m[1])
				}
			}
		}
		if st.ID != "" {
			if ids[st.ID] {
				t.Errorf("step %d (%s): a second step with id %s", i, st.Name, st.ID)
			}
			ids[st.ID] = true
		}
	}
	for _, want := range []string{"image", "digest", "tags", "pushed"} {
		out, ok := action.Outputs[want]
		if !ok {
			t.Errorf("no output %s", want)
			continue
		}
		m := regexp.MustCompile(`^\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}$`).FindStringSubmatch(out.Value)
		if m == nil || !ids[m[1]] {
			t.Errorf("output %s is %q, not a step's output", want, out.Value)
		}
	}
}

var (
	exprRe = regexp.MustCompile(`\$\{\{\s*([^}]+?)\s*\}\}`)
	// operandRe is what the harness evaluates in an expression: an input, a step's output
	// or outcome, or a string literal.
	operandRe = regexp.MustCompile(`^(?:inputs\.[\w-]+|github\.action_path|github\.token|steps\.[\w-]+\.outputs\.[\w-]+|steps\.[\w-]+\.(?:outcome|conclusion)|'[^']*')$`)
	// statusRe is one of the runner's status functions.
	statusRe = regexp.MustCompile(`^(!?)(success|failure|cancelled|always)\(\)$`)
)

// condition is a step's if: comparisons and status functions joined by &&, which is what
// action.yml needs of the runner's expression language.
type condition struct {
	status []string // status functions, "!" first when negated
	terms  [][3]string
}

func parseCondition(s string) (condition, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return condition{}, nil
	}
	if m := regexp.MustCompile(`^\$\{\{\s*(.*?)\s*\}\}$`).FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	var c condition
	for _, part := range strings.Split(s, "&&") {
		part = strings.TrimSpace(part)
		if m := statusRe.FindStringSubmatch(part); m != nil {
			c.status = append(c.status, m[1]+m[2])
			continue
		}
		m := regexp.MustCompile(`^(\S+)\s*(==|!=)\s*(\S+)$`).FindStringSubmatch(part)
		if m == nil || !operandRe.MatchString(m[1]) || !operandRe.MatchString(m[3]) {
			return c, fmt.Errorf("condition %q: %q is not a comparison or status function the harness knows", s, part)
		}
		c.terms = append(c.terms, [3]string{m[1], m[2], m[3]})
	}
	return c, nil
}

// holds evaluates the condition as the runner does: with no status function in it, a
// step runs only if no step before it failed; comparisons of strings ignore case.
func (c condition) holds(failed bool, value func(string) string) bool {
	status := c.status
	if len(status) == 0 {
		status = []string{"success"}
	}
	for _, f := range status {
		var v bool
		switch strings.TrimPrefix(f, "!") {
		case "success":
			v = !failed
		case "failure":
			v = failed
		case "cancelled":
			v = false
		case "always":
			v = true
		}
		if strings.HasPrefix(f, "!") {
			v = !v
		}
		if !v {
			return false
		}
	}
	for _, term := range c.terms {
		equal := strings.EqualFold(value(term[0]), value(term[2]))
		if equal != (term[1] == "==") {
			return false
		}
	}
	return true
}

// actionRunner stands in for GitHub's runner across runs of action.yml: each run is a job
// on a fresh machine, and all runs share one cache service, as the jobs of a repository
// do. Like GitHub's hosted runners, every machine has the same paths (home, temporary and
// tool cache directories): actions/cache finds an entry only for the paths it was saved
// from.
type actionRunner struct {
	repo    string
	machine string
	cache   *cacheService
	// user, when set, is the runner user steps run as, with sudo in sudo's directory, as
	// on GitHub's hosted runners; else steps run as root, as on some self-hosted ones.
	user *syscall.Credential
	sudo string
}

// runnerUID and runnerGID are the runner user's, as on GitHub's hosted runners.
const runnerUID, runnerGID = 1001, 1001

func newActionRunner(t *testing.T) *actionRunner {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return &actionRunner{repo: repo, machine: runnerDir(t), cache: &cacheService{dir: runnerDir(t)}}
}

// runnerDir is a temporary directory the runner user owns.
func runnerDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The test's temporary directory is root's, 0700: the runner user may pass through it.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, runnerUID, runnerGID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asRunnerUser has the runner's steps run as an unprivileged runner user who may run
// anything as root through sudo, as on GitHub's hosted runners. This machine has no sudo:
// the stand-in from testdata/sudo is installed setuid root, runnable by the runner's group
// only, for the length of the test.
func (r *actionRunner) asRunnerUser(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	sudo := filepath.Join(dir, "sudo")
	if out, err := exec.Command("go", "build", "-o", sudo, "./testdata/sudo").CombinedOutput(); err != nil {
		t.Fatalf("building the sudo stand-in: %v\n%s", err, out)
	}
	// chown clears the set-user-ID bit: it comes after.
	if err := os.Chown(sudo, 0, runnerGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sudo, os.ModeSetuid|0o750); err != nil {
		t.Fatal(err)
	}
	r.user = &syscall.Credential{Uid: runnerUID, Gid: runnerGID}
	r.sudo = dir
	cmd := exec.Command(sudo, "id", "-u")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.user}
	out, err := cmd.CombinedOutput()
	fixtures.Need(t, err == nil && strings.TrimSpace(string(out)) == "0",
		fmt.Sprintf("a setuid-root sudo stand-in in %s does not give root (a nosuid mount?): %v %q", dir, err, out))
}

// actionRun is what one run of the action left: its outputs, job summary and log, its exit
// code (that of the first step that failed), each step's outcome by name, and the keys
// the cache service saved.
type actionRun struct {
	outputs map[string]string
	summary string
	stderr  string
	code    int
	steps   map[string]string
	saved   []string
	// path is what the steps added to PATH for the job's later steps (GITHUB_PATH).
	path []string
}

// ran reports whether the step called name ran (and did not fail).
func (r actionRun) ran(name string) bool { return r.steps[name] == "success" }

// run runs action.yml's steps the way GitHub's runner runs a composite action, on a fresh
// machine (the last run's files gone): inputs with their defaults, ${{ }} expressions, a
// step's if (status functions included), its env, the GITHUB_OUTPUT, GITHUB_STEP_SUMMARY
// and GITHUB_PATH files, the actions it uses (through stand-ins), and the action's outputs
// from its steps' outputs. A PATH in env is the machine's.
func (r *actionRunner) run(t *testing.T, workspace string, with map[string]string, env []string) actionRun {
	t.Helper()
	action := readAction(t, r.repo)
	inputs := map[string]string{}
	for name, spec := range action.Inputs {
		def := spec.Default
		if v, ok := with[name]; ok {
			def = v
		} else if spec.Required {
			t.Fatalf("required input %s not given", name)
		}
		inputs[name] = def
	}
	for name := range with {
		if _, ok := inputs[name]; !ok {
			t.Fatalf("action.yml has no input %q", name)
		}
	}
	if action.Runs.Using != "composite" {
		t.Fatalf("runs.using is %v", action.Runs.Using)
	}
	home, runnerTemp, toolCache := filepath.Join(r.machine, "home"), filepath.Join(r.machine, "temp"), filepath.Join(r.machine, "tool-cache")
	for _, d := range []string{home, runnerTemp, toolCache} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if r.user != nil {
		// The machine and the workspace (which actions/checkout wrote) are the runner's.
		for _, d := range []string{home, runnerTemp, toolCache, workspace} {
			if err := filepath.WalkDir(d, func(p string, _ os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, int(r.user.Uid), int(r.user.Gid))
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(filepath.Dir(workspace), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	arch := map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH]
	path := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if r.user != nil {
		path = r.sudo + ":" + path
	}
	var pathAdded []string
	// The machine's own settings stay out: pyship's cache is where the action puts it.
	// Release downloads go nowhere unless a test serves them: the runs stay on this machine
	// even when the tree records a release.
	base := append(append(os.Environ(), "PYSHIP_CACHE_DIR=", "XDG_CACHE_HOME=", "HOME="+home, "PYSHIP_RELEASE_URL=http://127.0.0.1:1",
		"RUNNER_OS=Linux", "RUNNER_ARCH="+arch, "RUNNER_TEMP="+runnerTemp, "RUNNER_TOOL_CACHE="+toolCache,
		"GITHUB_ACTIONS=true", "GITHUB_REF=refs/heads/main", "GITHUB_WORKSPACE="+workspace, "GITHUB_ACTION_PATH="+r.repo), env...)

	steps := map[string]map[string]string{}
	outcomes := map[string]string{}
	value := func(operand string) string {
		parts := strings.Split(operand, ".")
		switch {
		case strings.HasPrefix(operand, "'"):
			return strings.Trim(operand, "'")
		case parts[0] == "inputs":
			return inputs[parts[1]]
		case operand == "github.action_path":
			return r.repo
		case operand == "github.token":
			// The job's token; pyship offers it to ghcr.io only, which these tests never
			// reach.
			return "harness-github-token"
		case parts[0] == "steps" && len(parts) == 4 && parts[2] == "outputs":
			return steps[parts[1]][parts[3]]
		case parts[0] == "steps" && len(parts) == 3:
			return outcomes[parts[1]]
		}
		t.Fatalf("expression %q is not one the harness knows", operand)
		return ""
	}
	eval := func(s string) string {
		return exprRe.ReplaceAllStringFunc(s, func(m string) string {
			return value(exprRe.FindStringSubmatch(m)[1])
		})
	}
	run := actionRun{outputs: map[string]string{}, steps: map[string]string{}}
	failed := false
	for i, step := range action.Runs.Steps {
		outcome := "skipped"
		record := func() {
			run.steps[step.Name] = outcome
			if step.ID != "" {
				outcomes[step.ID] = outcome
			}
		}
		if step.If != "" || failed {
			c, err := parseCondition(step.If)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if !c.holds(failed, value) {
				record()
				continue
			}
		}
		stepEnv := append(slices.Clone(base), "PATH="+strings.Join(append(slices.Clone(pathAdded), path), ":"))
		var (
			log  bytes.Buffer
			err  error
			code int
		)
		outputs := map[string]string{}
		if step.Uses != "" {
			with := map[string]string{}
			for k, v := range step.With {
				with[k] = eval(v)
			}
			var (
				added []string
				saved string
			)
			outputs, added, saved = r.uses(t, step.Uses, with, stepEnv, r.user, &log)
			pathAdded = append(added, pathAdded...)
			if saved != "" {
				run.saved = append(run.saved, saved)
			}
		} else {
			outputFile := filepath.Join(runnerTemp, fmt.Sprintf("_output-%d", i))
			summaryFile := filepath.Join(runnerTemp, fmt.Sprintf("_summary-%d", i))
			pathFile := filepath.Join(runnerTemp, fmt.Sprintf("_path-%d", i))
			for _, f := range []string{outputFile, summaryFile, pathFile} {
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if r.user != nil {
					if err := os.Chown(f, int(r.user.Uid), int(r.user.Gid)); err != nil {
						t.Fatal(err)
					}
				}
			}
			cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.Run)
			cmd.Dir = workspace
			cmd.Env = append(stepEnv, "GITHUB_OUTPUT="+outputFile, "GITHUB_STEP_SUMMARY="+summaryFile, "GITHUB_PATH="+pathFile)
			// As the runner does for actions, each input is also in INPUT_<NAME>.
			for name, v := range inputs {
				cmd.Env = append(cmd.Env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_"))+"="+v)
			}
			for k, v := range step.Env {
				cmd.Env = append(cmd.Env, k+"="+eval(v))
			}
			cmd.Stdout, cmd.Stderr = &log, &log
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.user}
			err = cmd.Run()
			if err != nil {
				code = cmd.ProcessState.ExitCode()
			}
			run.summary += string(mustRead(t, summaryFile))
			for _, line := range strings.Split(string(mustRead(t, outputFile)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					outputs[k] = v
				}
			}
			for _, dir := range strings.Split(strings.TrimSpace(string(mustRead(t, pathFile))), "\n") {
				if dir != "" {
					pathAdded = append([]string{dir}, pathAdded...)
				}
			}
		}
		run.stderr += log.String()
		if step.ID != "" {
			steps[step.ID] = outputs
		}
		outcome = "success"
		if err != nil {
			outcome = "failure"
			t.Logf("step %d (%v) failed with %d:\n%s", i, step.Name, code, log.String())
			if !failed {
				run.code = code
			}
			failed = true
		}
		record()
	}
	for name, spec := range action.Outputs {
		run.outputs[name] = eval(spec.Value)
	}
	run.path = pathAdded
	return run
}

// uses runs the stand-in for an action, with its inputs, and returns its outputs, the
// directories it adds to PATH and the key it saved a cache entry under. Like the actions
// they stand for, the stand-ins do not fail a step: a cache that cannot be restored or
// saved is a warning in the log. Inputs a stand-in does not know fail the test rather than
// go unheeded.
func (r *actionRunner) uses(t *testing.T, action string, with map[string]string, env []string, user *syscall.Credential, log *bytes.Buffer) (outputs map[string]string, path []string, saved string) {
	t.Helper()
	allow := func(names ...string) {
		for k := range with {
			if !slices.Contains(names, k) {
				t.Fatalf("%s: the stand-in does not take the input %q", action, k)
			}
		}
	}
	switch action {
	case "actions/cache/restore@v4":
		allow("path", "key", "restore-keys")
		absolute(t, lines(with["path"]))
		return r.cache.restore(lines(with["path"]), with["key"], lines(with["restore-keys"]), env, user, log), nil, ""
	case "actions/cache/save@v4":
		allow("path", "key")
		absolute(t, lines(with["path"]))
		return map[string]string{}, nil, r.cache.save(lines(with["path"]), with["key"], env, user, log)
	}
	t.Fatalf("step uses %v, which the harness has no stand-in for", action)
	return nil, nil, ""
}

// absolute fails the test unless every path is absolute and plain, all the cache
// service's stand-in takes.
func absolute(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "*?[{!~") {
			t.Fatalf("actions/cache stand-in: path %q is not absolute and plain", p)
		}
	}
}

// lines splits a multi-line input as actions/cache does: one item a line, trimmed, blank
// lines left out.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// cacheService is a stand-in for GitHub's hosted cache service as actions/cache v4 (its
// restore and save actions) presents it, which cannot be reached from here. Its contract,
// after actions/cache's documentation and source:
//   - an entry is a tar archive of the paths as given, saved under a key and a version
//     that hashes those paths: a restore with other paths finds nothing (actions/cache
//     also takes paths relative to the workspace, globs and ~, which the stand-in refuses);
//   - restore takes the entry whose key is the key exactly (cache-hit true), else the
//     newest whose key starts with the key, else, for each restore key in order, the
//     newest whose key starts with it (cache-hit false); cache-matched-key names it;
//   - an entry is never changed: saving a key that exists saves nothing, with a warning,
//     and so does saving paths none of which exist. Failures are warnings, not errors.
//
// It leaves out branch scopes (a job sees its branch's entries and its default branch's),
// eviction and size limits.
type cacheService struct {
	dir     string
	entries []cacheEntry // oldest first
}

type cacheEntry struct {
	key, version, file string
}

func cacheVersion(paths []string) string {
	h := sha256.Sum256([]byte(strings.Join(append(slices.Clone(paths), "zstd-without-long"), "|")))
	return hex.EncodeToString(h[:])
}

// restore extracts the matching entry as the step's user and returns the restore action's
// outputs.
func (c *cacheService) restore(paths []string, key string, restoreKeys []string, env []string, user *syscall.Credential, log *bytes.Buffer) map[string]string {
	out := map[string]string{"cache-primary-key": key, "cache-hit": "false"}
	version := cacheVersion(paths)
	newest := func(match func(string) bool) *cacheEntry {
		for i := len(c.entries) - 1; i >= 0; i-- {
			if e := &c.entries[i]; e.version == version && match(e.key) {
				return e
			}
		}
		return nil
	}
	found := newest(func(k string) bool { return k == key })
	if found != nil {
		out["cache-hit"] = "true"
	}
	for _, prefix := range append([]string{key}, restoreKeys...) {
		if found == nil {
			found = newest(func(k string) bool { return strings.HasPrefix(k, prefix) })
		}
	}
	if found == nil {
		fmt.Fprintf(log, "Cache not found for input keys: %s\n", strings.Join(append([]string{key}, restoreKeys...), ", "))
		return out
	}
	cmd := exec.Command("tar", "-xf", found.file, "-P")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(log, "Warning: Failed to restore: %v: %s\n", err, b)
		return out
	}
	out["cache-matched-key"] = found.key
	fmt.Fprintf(log, "Cache restored from key: %s\n", found.key)
	return out
}

// save archives the paths that exist as the step's user and returns the key saved, or ""
// with a warning in the log.
func (c *cacheService) save(paths []string, key string, env []string, user *syscall.Credential, log *bytes.Buffer) string {
	version := cacheVersion(paths)
	for _, e := range c.entries {
		if e.key == key && e.version == version {
			fmt.Fprintf(log, "Warning: Failed to save: Unable to reserve cache with key %s, another job may be creating this cache.\n", key)
			return ""
		}
	}
	var existing []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			existing = append(existing, p)
		}
	}
	if len(existing) == 0 {
		fmt.Fprintf(log, "Warning: Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.\n")
		return ""
	}
	file := filepath.Join(c.dir, fmt.Sprintf("%d.tar", len(c.entries)))
	cmd := exec.Command("tar", append([]string{"--posix", "-cf", file, "-P", "--"}, existing...)...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user}
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(log, "Warning: Failed to save: %v: %s\n", err, b)
		return ""
	}
	c.entries = append(c.entries, cacheEntry{key: key, version: version, file: file})
	fmt.Fprintf(log, "Cache saved with key: %s\n", key)
	return key
}

// list returns the names of the files in the entry saved under key.
func (c *cacheService) list(t *testing.T, key string) []string {
	t.Helper()
	for _, e := range c.entries {
		if e.key == key {
			out, err := exec.Command("tar", "-tf", e.file, "-P").Output()
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if !strings.HasSuffix(f, "/") {
					files = append(files, f)
				}
			}
			return files
		}
	}
	t.Fatalf("no cache entry %s", key)
	return nil
}

// withoutGo is PATH without the directories that hold a go command: a machine without Go.
func withoutGo() string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err != nil {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, ":")
}

// TestAction runs action.yml against the test bed: outputs, tags, the job summary, its
// caches between runs, and an annotation that points at the file at fault when the
// repository is wrong.
func TestAction(t *testing.T) {
	reg := fixtures.Testbed(t)
	workspace := t.TempDir()
	app := filepath.Join(workspace, "services", "web")
	if err := os.CopyFS(app, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
		t.Fatal(err)
	}
	env := []string{"GITHUB_SHA=0123456789abcdef0123", "GITHUB_REF_NAME=feature/login", "GITHUB_REF=refs/heads/feature/login", "GITHUB_EVENT_NAME=push"}
	goDownload := goReleases(t, "")
	noGo := append(slices.Clone(env), "PATH="+withoutGo(), "PYSHIP_GO_DOWNLOAD="+goDownload.url)
	repo := reg + "/e2e/action-" + uniqueTag()
	with := map[string]string{"path": "services/web", "image": repo + ":v1", "tags": "extra, more", "base-mirror": reg}
	runner := newActionRunner(t)
	runner.asRunnerUser(t)

	// The first run, on a hosted runner without Go: the action downloads one for the build
	// (and leaves it off the job's PATH), pyship is built,
	// the dependencies are installed (by pyship as root), and both pyship and its cache are
	// saved by the runner user.
	run := runner.run(t, workspace, with, noGo)
	if run.code != 0 {
		t.Fatalf("the action failed with %d", run.code)
	}
	image, digest := run.outputs["image"], run.outputs["digest"]
	if !strings.HasPrefix(image, repo+"@sha256:") || !strings.HasSuffix(image, digest) || !strings.HasPrefix(digest, "sha256:") || run.outputs["name"] != repo {
		t.Errorf("outputs image %q name %q digest %q", image, run.outputs["name"], digest)
	}
	if want := repo + ":v1," + repo + ":extra," + repo + ":more," + repo + ":sha-0123456," + repo + ":feature-login"; run.outputs["tags"] != want {
		t.Errorf("output tags %q, want %q", run.outputs["tags"], want)
	}
	checkTagged(t, run.outputs["tags"], digest)
	if run.outputs["pushed"] != "true" {
		t.Errorf("output pushed %q, want true", run.outputs["pushed"])
	}
	// The cache pyship, as root, wrote in the runner user's home is handed back to the
	// runner user, but for the file systems extracted from images (whose owners are part
	// of them).
	rootOwned(t, filepath.Join(runner.machine, "home"), "rootfs", "trees")
	for _, want := range []string{"## pyship", "Pushed **`" + image + "`**", "Smoke test: **passed**", "| start | `python app.py` | app.py:", "Image size:", "pip install"} {
		if !strings.Contains(run.summary, want) {
			t.Errorf("the job summary lacks %q:\n%s", want, run.summary)
		}
	}
	if !strings.Contains(run.stderr, "::group::pyship publish") || !strings.Contains(run.stderr, "::endgroup::") {
		t.Errorf("the logs are not folded into a group")
	}
	if !run.ran("Build pyship") || !strings.Contains(run.stderr, "dependencies installed") {
		t.Errorf("the first run did not build pyship and install the dependencies: %v", run.steps)
	}
	if n := goDownload.fetched(); n != 1 || !strings.Contains(run.stderr, "downloaded Go "+goDownload.version+" from "+goDownload.url+" (SHA-256 checked)") {
		t.Errorf("the first run fetched the Go release %d times, want once:\n%s", n, run.stderr)
	}
	if len(run.path) != 0 {
		t.Errorf("the action added %q to the job's PATH", run.path)
	}
	if len(run.saved) != 2 || !strings.HasPrefix(run.saved[0], "pyship-bin-") || !strings.HasPrefix(run.saved[1], "pyship-Linux-") {
		t.Fatalf("the first run saved %q, want pyship and its cache:\n%s", run.saved, run.stderr)
	}
	first := run

	// The second run, on another machine with no Go at all: pyship comes from the cache
	// and so does the dependency layer. Nothing is built, installed or saved, and the
	// image is the same.
	run = runner.run(t, workspace, with, noGo)
	if run.code != 0 {
		t.Fatalf("the second run failed with %d", run.code)
	}
	if n := goDownload.fetched(); n != 1 {
		t.Errorf("the second run fetched Go again (%d downloads in all)", n)
	}
	for _, step := range []string{"Build pyship", "Keep pyship", "Save pyship's cache"} {
		if s := run.steps[step]; s != "skipped" {
			t.Errorf("the second run's step %q: %s, want skipped", step, s)
		}
	}
	if !strings.Contains(run.stderr, "Cache restored from key: "+first.saved[0]+"\n") || !strings.Contains(run.stderr, "Cache restored from key: "+first.saved[1]+"\n") {
		t.Errorf("the second run did not restore both caches:\n%s", run.stderr)
	}
	if strings.Contains(run.stderr, "dependencies installed") || !strings.Contains(run.stderr, "dependencies cached") {
		t.Errorf("the second run installed the dependencies:\n%s", run.stderr)
	}
	if len(run.saved) != 0 {
		t.Errorf("the second run saved %q, want nothing", run.saved)
	}
	if run.outputs["digest"] != first.outputs["digest"] {
		t.Errorf("the second run pushed %s, the first %s", run.outputs["digest"], first.outputs["digest"])
	}

	// From here on, steps run as root, as on a self-hosted runner: no sudo, no handing over.
	runner.user = nil

	// Other dependencies: the newest entry for the same base is restored, the install
	// runs, and the entry saved holds the new dependency layer, not the old one.
	requirements := filepath.Join(app, "requirements.txt")
	pinned := mustRead(t, requirements)
	if err := os.WriteFile(requirements, append(slices.Clone(pinned), "# another set of dependencies\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	run = runner.run(t, workspace, with, env)
	if run.code != 0 {
		t.Fatalf("the run with other dependencies failed with %d", run.code)
	}
	if !strings.Contains(run.stderr, "Cache restored from key: "+first.saved[1]+"\n") || !strings.Contains(run.stderr, "dependencies installed") {
		t.Errorf("the run with other dependencies did not restore the base's entry and install:\n%s", run.stderr)
	}
	// pyship-OS-ARCH-BASE-DEPENDENCIES-CONTENT
	basePrefix := strings.Join(strings.SplitAfterN(first.saved[1], "-", 5)[:4], "")
	if len(run.saved) != 1 || !strings.HasPrefix(run.saved[0], basePrefix) || strings.HasPrefix(run.saved[0], first.saved[1][:len(first.saved[1])-17]) {
		t.Fatalf("the run with other dependencies saved %q, want a new entry for the same base as %s", run.saved, first.saved[1])
	}
	var deps, blobs, layers int
	for _, f := range runner.cache.list(t, run.saved[0]) {
		switch {
		case strings.Contains(f, "/layers/deps-") && strings.HasSuffix(f, ".digest"):
			deps++
		case strings.Contains(f, "/oci/blobs/sha256/"):
			blobs++
		case strings.Contains(f, "/layers/sha256-"):
			layers++
		case strings.HasSuffix(f, "/oci/index.json"), strings.HasSuffix(f, "/oci/oci-layout"), strings.Contains(f, "/layers/user-"), strings.HasSuffix(f, ".system"):
		default:
			t.Errorf("the cache entry holds %s", f)
		}
	}
	if deps != 1 || layers != 2 || blobs < 3 {
		t.Errorf("the cache entry holds %d dependency keys, %d layers and %d base blobs; want 1, 2 (the dependencies and the user) and the base", deps, layers, blobs)
	}
	if err := os.WriteFile(requirements, pinned, 0o644); err != nil {
		t.Fatal(err)
	}

	// cache: false leaves pyship's cache alone: nothing restored, nothing saved; the
	// registry cache (the image's repository, by default) still has the dependencies.
	off := withInputs(with, "cache", "false", "image", repo+":v3")
	run = runner.run(t, workspace, off, env)
	if run.code != 0 {
		t.Fatalf("the run with cache false failed with %d", run.code)
	}
	for _, step := range []string{"Key pyship's cache", "Restore pyship's cache", "Pack pyship's cache", "Save pyship's cache"} {
		if s := run.steps[step]; s != "skipped" {
			t.Errorf("with cache false, step %q: %s, want skipped", step, s)
		}
	}
	if !strings.Contains(run.stderr, "dependencies from the registry cache: tag="+repo+":pyship-deps-") || len(run.saved) != 0 {
		t.Errorf("with cache false, the run saved %q, or did not take the dependencies from the registry cache:\n%s", run.saved, run.stderr)
	}

	// A repository mistake fails the step with an annotation on the file and line.
	if err := os.WriteFile(filepath.Join(app, "Procfile"), []byte("web: python app.py\nweb: gunicorn app:app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run = runner.run(t, workspace, map[string]string{"path": "services/web", "image": repo + ":v2", "setup-go": "false"}, env)
	if run.code != exitDetect {
		t.Errorf("the action exited %d, want %d", run.code, exitDetect)
	}
	if want := "::error file=services/web/Procfile,line=2,title=pyship::Procfile:2: a second web process"; !strings.Contains(run.stderr, want) {
		t.Errorf("no annotation %q in:\n%s", want, run.stderr)
	}
	if strings.Count(run.stderr, "::error ") != 1 {
		t.Errorf("not one annotation in:\n%s", run.stderr)
	}
	failedOutsideGroup(t, run, exitDetect, "Procfile:2: a second web process")
}

// checkTagged checks that each reference in refs (separated by commas) is in the registry,
// pointing at digest.
func checkTagged(t *testing.T, refs, digest string) {
	t.Helper()
	for _, r := range strings.Split(refs, ",") {
		ref, err := name.ParseReference(r)
		if err != nil {
			t.Fatalf("output tags: %q: %v", r, err)
		}
		if ref.Context().String()+":"+ref.Identifier() != r {
			t.Errorf("output tags: %q is not a whole reference", r)
		}
		if desc, err := remote.Head(ref); err != nil || desc.Digest.String() != digest {
			t.Errorf("%s: %v %v, want %s", ref, desc, err, digest)
		}
	}
}

// failedOutsideGroup checks what a failed run shows: the error after the log's folded
// group, and a job summary that says it failed, with the error.
func failedOutsideGroup(t *testing.T, run actionRun, code int, want string) {
	t.Helper()
	if run.code != code {
		t.Errorf("the action exited %d, want %d", run.code, code)
	}
	_, after, ok := strings.Cut(run.stderr, "::endgroup::")
	if !ok {
		after = run.stderr
	}
	if !strings.Contains(after, want) {
		t.Errorf("the log, outside the group, does not say %q:\n%s", want, run.stderr)
	}
	if !strings.Contains(run.summary, "## pyship") || !strings.Contains(run.summary, "**Failed**") || !strings.Contains(run.summary, want) {
		t.Errorf("the job summary does not say the run failed with %q:\n%s", want, run.summary)
	}
}

// rootOwned fails the test for each file under dir that the runner user does not own, but
// for those under a directory whose name starts with one of allowed.
func rootOwned(t *testing.T, dir string, allowed ...string) {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, a := range allowed {
			if d.IsDir() && strings.HasPrefix(d.Name(), a) {
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != runnerUID {
			found = append(found, fmt.Sprintf("%s (uid %d)", p, st.Uid))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("the runner user does not own %d files in %s: %s", len(found), dir, strings.Join(found[:min(len(found), 10)], ", "))
	}
}

// withInputs returns a copy of m with the pairs of keys and values set.
func withInputs(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestActionEvents runs action.yml as GitHub's hosted runners run it (an unprivileged
// runner user with sudo), for the events a workflow meets: a pull request builds and
// smoke-tests and pushes nothing; a version tag pushes its semver variants, under a
// repository name with GitHub's capitals; pull_request_target pushes no base-branch tag;
// job-level PYSHIP_* variables stay in force; and failures (a whole reference in tags, a
// wrong password) name the action's inputs, outside the log's group and in the summary.
func TestActionEvents(t *testing.T) {
	reg := fixtures.Testbed(t)
	workspace := t.TempDir()
	if err := os.CopyFS(workspace, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
		t.Fatal(err)
	}
	runner := newActionRunner(t)
	runner.asRunnerUser(t)
	u := uniqueTag()
	event := func(payload string) string {
		p := filepath.Join(t.TempDir(), "event.json")
		if err := os.WriteFile(p, []byte(payload), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cacheRepo := reg + "/e2e/action-cache-" + u
	// The job's own settings: the base mirror and the registry cache come from the job's
	// variables, not from inputs, which are left empty.
	job := []string{"GITHUB_ACTION_REF=v9.8.7", "GITHUB_REPOSITORY=Octo-Org/Hello-" + u, "GITHUB_REPOSITORY_OWNER=Octo-Org",
		"PYSHIP_BASE_MIRROR=" + reg, "PYSHIP_CACHE_REPO=" + cacheRepo}
	with := map[string]string{"cache": "false"}

	// A pull request: built and smoke-tested, nothing pushed, no credentials needed.
	repo := reg + "/e2e/action-pr-" + u
	start := time.Now()
	run := runner.run(t, workspace, withInputs(with, "image", repo), append(slices.Clone(job),
		"GITHUB_EVENT_NAME=pull_request", "GITHUB_REF=refs/pull/5/merge", "GITHUB_SHA=1111111111abcdef",
		"GITHUB_EVENT_PATH="+event(`{"number":5,"repository":{"default_branch":"main"}}`)))
	t.Logf("pull request run: %s", time.Since(start).Round(time.Second))
	if run.code != 0 {
		t.Fatalf("the pull request run failed with %d:\n%s", run.code, run.stderr)
	}
	if run.outputs["pushed"] != "false" || run.outputs["tags"] != "" || run.outputs["image"] != "" || !strings.HasPrefix(run.outputs["digest"], "sha256:") {
		t.Errorf("the pull request run's outputs: %v", run.outputs)
	}
	if !strings.Contains(run.summary, "Smoke test: **passed**") || !strings.Contains(run.summary, "not pushed") {
		t.Errorf("the pull request run's summary does not say the smoke test passed and nothing was pushed:\n%s", run.summary)
	}
	repoRef, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	if tags, err := remote.List(repoRef); err == nil && len(tags) > 0 {
		t.Errorf("the pull request run pushed %v", tags)
	}
	if !strings.Contains(run.stderr, "tag="+cacheRepo+":pyship-deps-") {
		t.Errorf("the job's PYSHIP_CACHE_REPO was not used:\n%s", run.stderr)
	}
	if !strings.Contains(run.stderr, "pyship v9.8.7+src.") {
		t.Errorf("the log does not show pyship's version:\n%s", run.stderr)
	}
	// Nothing of root's is left in the runner user's home.
	rootOwned(t, filepath.Join(runner.machine, "home"))

	// A version tag, to a repository named with GitHub's capitals: lower-cased, and the
	// tag's semver variants pushed, with no latest.
	image := reg + "/Octo-Org/Hello-" + u
	lower := strings.ToLower(image)
	// Labels and the smoke test's limits come from inputs too.
	run = runner.run(t, workspace, withInputs(with, "image", image, "labels", "team=web\n  org.opencontainers.image.licenses=MIT  \n", "cpus", "0.5", "pids", "128"),
		append(slices.Clone(job), "GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/tags/v1.2.3", "GITHUB_REF_NAME=v1.2.3", "GITHUB_SHA=2222222222abcdef"))
	if run.code != 0 {
		t.Fatalf("the version tag run failed with %d:\n%s", run.code, run.stderr)
	}
	var want []string
	for _, tag := range []string{"sha-2222222", "v1.2.3", "1.2.3", "1.2", "1"} {
		want = append(want, lower+":"+tag)
	}
	if got := run.outputs["tags"]; got != strings.Join(want, ",") {
		t.Errorf("the version tag run pushed %q, want %q", got, strings.Join(want, ","))
	}
	checkTagged(t, run.outputs["tags"], run.outputs["digest"])
	pushed, err := remote.Image(mustTag(t, lower+":v1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := pushed.ConfigFile()
	if err != nil || cf.Config.Labels["team"] != "web" || cf.Config.Labels["org.opencontainers.image.licenses"] != "MIT" {
		t.Errorf("the labels input did not reach the image: %v (%v)", cf.Config.Labels, err)
	}
	if smoke := smokeStatement(t, lower, run.outputs["digest"]); !strings.Contains(smoke, `"cpus": 0.5`) || !strings.Contains(smoke, `"pids": 128`) {
		t.Errorf("the smoke test did not run with the cpus and pids inputs' limits:\n%s", smoke)
	}
	if _, err := remote.Head(mustTag(t, lower+":latest")); err == nil {
		t.Errorf("the version tag run pushed latest, which nobody asked for")
	}

	// pull_request_target, pushed on purpose: the base branch's tag and commit are not the
	// pull request's code; only pr-N is set.
	repo = reg + "/e2e/action-prt-" + u
	run = runner.run(t, workspace, withInputs(with, "image", repo, "push", "true", "test", "false", "latest", "default-branch"), append(slices.Clone(job),
		"GITHUB_EVENT_NAME=pull_request_target", "GITHUB_REF=refs/heads/main", "GITHUB_REF_NAME=main", "GITHUB_SHA=3333333333abcdef",
		"GITHUB_EVENT_PATH="+event(`{"number":9,"repository":{"default_branch":"main"}}`)))
	if run.code != 0 {
		t.Fatalf("the pull_request_target run failed with %d:\n%s", run.code, run.stderr)
	}
	if got := run.outputs["tags"]; got != repo+":pr-9" {
		t.Errorf("the pull_request_target run pushed %q, want only %s:pr-9", got, repo)
	}
	if tags, err := imageTags(mustRepo(t, repo)); err != nil || strings.Join(tags, ",") != "pr-9" {
		t.Errorf("the registry has %v (%v), want pr-9 alone", tags, err)
	}

	// Two platforms, the input written loosely: an image index of the runner's image and an
	// arm64 one built from its wheels, each smoke-tested (the arm64 one under qemu-user).
	fixtures.Need(t, slices.Contains(strings.Fields(os.Getenv("PYSHIP_TEST_MULTIARCH")), "3.13"),
		"the test bed has no multi-platform python:3.13-multiarch base: see what fixtures/testbed/up said")
	multi := t.TempDir()
	if err := os.CopyFS(multi, os.DirFS(workspace)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(multi, ".python-version"), []byte("3.13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo = reg + "/e2e/action-multi-" + u
	run = runner.run(t, multi, withInputs(with, "image", repo, "platforms", "linux/amd64, linux/arm64", "base", reg+"/library/python:3.13-multiarch"),
		append(slices.Clone(job), "GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/heads/main", "GITHUB_SHA=6666666666abcdef"))
	if run.code != 0 {
		t.Fatalf("the two-platform run failed with %d:\n%s", run.code, run.stderr)
	}
	if n := strings.Count(run.stderr, "smoke test passed"); n != 2 {
		t.Errorf("%d smoke tests passed in the two-platform run, want 2", n)
	}
	idx, err := remote.Index(mustRepo(t, repo).Digest(run.outputs["digest"]))
	if err != nil {
		t.Fatalf("the digest output %q is no image index: %v", run.outputs["digest"], err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, desc := range im.Manifests {
		platforms = append(platforms, desc.Platform.String())
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("the index holds %q, want linux/amd64 and linux/arm64/v8", platforms)
	}

	// A whole reference in tags: the error is about the tags input.
	run = runner.run(t, workspace, withInputs(with, "image", repo, "tags", "v2, "+repo+":v3"), append(slices.Clone(job),
		"GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/heads/main", "GITHUB_SHA=4444444444abcdef"))
	failedOutsideGroup(t, run, exitUsage, "the input tags: \""+repo+":v3\" is a whole image reference; give only the tag, \"v3\"")

	// A wrong password: the error names the inputs, not docker login.
	secure := startSecureRegistry(t)
	run = runner.run(t, workspace, withInputs(with, "image", secure.addr+"/e2e/app", "username", secure.user, "password", "wrong-"+u, "registry-ca", secure.caFile),
		append(slices.Clone(job), "GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/heads/main", "GITHUB_SHA=5555555555abcdef"))
	failedOutsideGroup(t, run, exitPublish, "check the inputs username and password")
	if strings.Contains(run.stderr, "docker login") {
		t.Errorf("the wrong password's error speaks of docker login:\n%s", run.stderr)
	}
	if strings.Contains(run.stderr+run.summary, "wrong-"+u) {
		t.Errorf("the password shows in the log or the summary")
	}
}

// smokeStatement returns the smoke-test statement attached to the image repo@digest.
func smokeStatement(t *testing.T, repo, digest string) string {
	t.Helper()
	d, err := name.NewDigest(repo + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range m.Manifests {
		if desc.Annotations["in-toto.io/predicate-type"] != "https://github.com/pyship/pyship/smoke-test/v1" {
			continue
		}
		img, err := remote.Image(d.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("the statement has %d layers (%v)", len(ls), err)
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	t.Fatalf("%s@%s has no smoke-test statement", repo, digest)
	return ""
}

// imageTags lists a repository's tags, but for the referrers tag schema's (sha256-...),
// which hold the evidence attached to an image, not an image.
func imageTags(repo name.Repository) ([]string, error) {
	tags, err := remote.List(repo)
	return slices.DeleteFunc(tags, func(t string) bool { return strings.HasPrefix(t, "sha256-") }), err
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestActionFailsFast: mistakes found before anything is fetched or built fail the first
// step within seconds, with an error that names the fix and a job summary: a runner that
// is not Linux, a boolean input that is not true or false, and a runner user without
// passwordless sudo (whose sudo would wait for a password forever).
func TestActionFailsFast(t *testing.T) {
	workspace := t.TempDir()
	with := map[string]string{"image": "127.0.0.1:1/e2e/app"}
	for _, tc := range []struct {
		name   string
		with   map[string]string
		env    []string
		noSudo bool
		want   []string
		// notLine must start no line of the log: a workflow command the runner would run.
		notLine string
	}{
		{name: "Windows", env: []string{"RUNNER_OS=Windows"}, want: []string{"Linux runners only", "Windows", "runs-on: ubuntu-latest"}},
		{name: "macOS", env: []string{"RUNNER_OS=macOS"}, want: []string{"Linux runners only", "macOS"}},
		{name: "test: False", with: withInputs(with, "test", "False"), want: []string{`the input test is "False"`, "true or false"}},
		{name: "push: yes", with: withInputs(with, "push", "yes"), want: []string{`the input push is "yes"`, "true or false"}},
		{name: "a value that holds a workflow command", with: withInputs(with, "insecure", "no\n::warning::injected"),
			want: []string{`the input insecure is "no`}, notLine: "::warning::injected"},
		{name: "latest: always", with: withInputs(with, "latest", "always"), want: []string{`the input latest is "always"`, "true, false or default-branch"}},
		{name: "no passwordless sudo, no user namespaces", noSudo: true,
			want: []string{"needs root or user namespaces", "sudo -n true", "a password is required", "NOPASSWD", "Operation not permitted", "unprivileged_userns_clone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runner := newActionRunner(t)
			if tc.noSudo {
				runner.asRunnerUserWithoutSudo(t)
				// A kernel that refuses unprivileged user namespaces, as unshare reports it.
				noUserns := "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n"
				if err := os.WriteFile(filepath.Join(runner.sudo, "unshare"), []byte(noUserns), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			w := tc.with
			if w == nil {
				w = with
			}
			start := time.Now()
			run := runner.run(t, workspace, w, append(tc.env, "GITHUB_EVENT_NAME=push"))
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the action took %s to fail", took)
			}
			if run.code != exitUsage {
				t.Errorf("the action exited %d, want %d:\n%s", run.code, exitUsage, run.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(run.stderr, want) || !strings.Contains(run.summary, want) {
					t.Errorf("the log or the job summary does not say %q:\n%s\n%s", want, run.stderr, run.summary)
				}
			}
			if tc.notLine != "" && (strings.HasPrefix(run.stderr, tc.notLine) || strings.Contains(run.stderr, "\n"+tc.notLine)) {
				t.Errorf("a line of the log starts with %q:\n%s", tc.notLine, run.stderr)
			}
			for step, outcome := range run.steps {
				if step != "Check the runner and inputs" && step != "Report the failure" && outcome != "skipped" {
					t.Errorf("step %q ran (%s) after the check failed", step, outcome)
				}
			}
		})
	}
}

// TestActionRootless: a runner user without passwordless sudo, on a kernel that allows
// user namespaces, builds, smoke-tests and pushes as itself, in a user namespace, with a
// warning; sudo is never asked (the stand-in would wait for a password), and the runner
// user owns everything left in its home.
func TestActionRootless(t *testing.T) {
	reg := fixtures.Testbed(t)
	out, err := exec.Command("unshare", "--user", "--map-root-user", "--mount", "true").CombinedOutput()
	fixtures.Need(t, err == nil, fmt.Sprintf("user namespaces that may mount: %v %s", err, out))
	workspace := t.TempDir()
	if err := os.CopyFS(workspace, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
		t.Fatal(err)
	}
	runner := newActionRunner(t)
	runner.asRunnerUserWithoutSudo(t)
	repo := reg + "/e2e/action-rootless-" + uniqueTag()
	run := runner.run(t, workspace, map[string]string{"image": repo, "base-mirror": reg, "cache-repo": "false"},
		[]string{"GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/heads/main", "GITHUB_SHA=6666666666abcdef"})
	if run.code != 0 {
		t.Fatalf("the rootless run failed with %d:\n%s", run.code, run.stderr)
	}
	if !strings.Contains(run.stderr, "pyship runs in a user namespace") {
		t.Errorf("the rootless run does not warn that it runs in a user namespace:\n%s", run.stderr)
	}
	if strings.Contains(run.stderr, "[sudo] password") {
		t.Errorf("the rootless run asked sudo for a password:\n%s", run.stderr)
	}
	if !strings.Contains(run.summary, "Smoke test: **passed**") {
		t.Errorf("the rootless run's smoke test did not pass:\n%s", run.summary)
	}
	checkTagged(t, run.outputs["tags"], run.outputs["digest"])
	if want := repo + ":sha-6666666," + repo + ":main"; run.outputs["tags"] != want {
		t.Errorf("the rootless run pushed %q, want %q", run.outputs["tags"], want)
	}
	rootOwned(t, filepath.Join(runner.machine, "home"))
}

// asRunnerUserWithoutSudo has the runner's steps run as an unprivileged user whose sudo
// wants a password, as on a self-hosted runner set up without sudo rights: like sudo, the
// stand-in fails at once with -n, and without it waits for a password.
func (r *actionRunner) asRunnerUserWithoutSudo(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
for a in "$@"; do
  if [ "$a" = -n ]; then
    echo "sudo: a password is required" >&2
    exit 1
  fi
done
echo "[sudo] password for $(id -un):" >&2
sleep 120
exit 1
`
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r.user = &syscall.Credential{Uid: runnerUID, Gid: runnerGID}
	r.sudo = dir
}

// goDownload is a stand-in for go.dev/dl on 127.0.0.1: its JSON list of releases, with
// one release, the Go this test runs under, as an archive that holds a go command that
// runs it.
type goDownload struct {
	url, version string
	downloads    *atomic.Int32
}

func (g goDownload) fetched() int { return int(g.downloads.Load()) }

// goReleases serves the stand-in; a non-empty badSum is listed instead of the archive's
// SHA-256.
func goReleases(t *testing.T, badSum string) goDownload {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	goroot, version, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var archive bytes.Buffer
	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	script := "#!/bin/sh\nexec " + filepath.Join(goroot, "bin", "go") + " \"$@\"\n"
	for _, h := range []*tar.Header{
		{Name: "go/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "go/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "go/bin/go", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(script))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive.Bytes())
	listed := hex.EncodeToString(sum[:])
	if badSum != "" {
		listed = badSum
	}
	arch := runtime.GOARCH
	file := version + ".linux-" + arch + ".tar.gz"
	list := fmt.Sprintf(`[{"version":"go1.99.1","stable":false,"files":[]},
{"version":%q,"stable":true,"files":[{"filename":"%s.src.tar.gz","os":"","arch":"","kind":"source","sha256":"%s"},
{"filename":%q,"os":"linux","arch":%q,"kind":"archive","sha256":%q}]}]`, version, version, strings.Repeat("0", 64), file, arch, listed)
	var downloads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && r.URL.Query().Get("mode") == "json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, list)
		case r.URL.Path == "/"+file:
			downloads.Add(1)
			w.Write(archive.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return goDownload{url: srv.URL, version: version, downloads: &downloads}
}

// TestActionGoChecksum: a Go release that does not match the SHA-256 listed for it is not
// used: the build step fails and says so.
func TestActionGoChecksum(t *testing.T) {
	releases := goReleases(t, strings.Repeat("ab", 32))
	runner := newActionRunner(t)
	run := runner.run(t, t.TempDir(), map[string]string{"image": "127.0.0.1:1/e2e/app"},
		[]string{"GITHUB_EVENT_NAME=push", "PATH=" + withoutGo(), "PYSHIP_GO_DOWNLOAD=" + releases.url})
	if run.code == 0 || run.steps["Build pyship"] != "failure" {
		t.Fatalf("the action did not fail at Build pyship: %d %v", run.code, run.steps)
	}
	if want := "does not match the SHA-256"; !strings.Contains(run.stderr, want) || !strings.Contains(run.summary, want) {
		t.Errorf("the log or summary does not say %q:\n%s\n%s", want, run.stderr, run.summary)
	}
	if releases.fetched() != 1 {
		t.Errorf("the archive was fetched %d times, want once", releases.fetched())
	}
}

// releasedAction is a copy of the action (the working tree, without .git) in which a
// release of version is made as the README says: release/build.sh builds its binaries into
// dist, and release/record.sh commits to the tree their checksums and release/VERSION. It
// returns the copy, dist, and each binary's SHA-256 by file name. The copy keeps the
// repository itself out of reach of the test's writes.
func releasedAction(t *testing.T, version string) (dir, dist string, sums map[string]string) {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir, dist = t.TempDir(), t.TempDir()
	copyTree(t, repo, dir)
	for _, script := range []string{"build.sh", "record.sh"} {
		cmd := exec.Command(filepath.Join(dir, "release", script), version, dist)
		cmd.Env = append(os.Environ(), "PYSHIP_RELEASE_REPOSITORY=pyship/pyship")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("release/%s %s: %v\n%s", script, version, err, out)
		}
	}
	sums = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "release", "checksums", version+".sha256")))), "\n") {
		sum, file, _ := strings.Cut(line, "  ")
		sums[file] = sum
	}
	if len(sums) != 2 {
		t.Fatalf("release/checksums/%s.sha256 lists %v, want the amd64 and arm64 binaries", version, sums)
	}
	return dir, dist, sums
}

// copyTree copies the directory src, but for .git, into dst, as it is (links and modes).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `tar -C "$1" --exclude=./.git -cf - . | tar -C "$2" -xf -`, "copy", src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", src, err, out)
	}
}

// releaseDownload is a stand-in for the GitHub release downloads on 127.0.0.1
// (PYSHIP_RELEASE_URL): VERSION/FILE from a directory, with one byte changed when
// tampered, counting the downloads of each path.
type releaseDownload struct {
	url       string
	mu        sync.Mutex
	downloads map[string]int
}

func (d *releaseDownload) fetched(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.downloads[path]
}

func serveRelease(t *testing.T, version, dist string, tampered bool) *releaseDownload {
	t.Helper()
	d := &releaseDownload{downloads: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.downloads[r.URL.Path]++
		d.mu.Unlock()
		file, ok := strings.CutPrefix(r.URL.Path, "/"+version+"/")
		if !ok || !strings.HasPrefix(file, "pyship-"+version+"-linux-") {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(dist, file))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if tampered {
			b[len(b)/2] ^= 1
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	d.url = srv.URL
	return d
}

// TestActionRelease: an action whose tree records a release of its own Go sources takes
// that release's binary, downloaded (from the stand-in, as PYSHIP_RELEASE_URL says) and
// checked against the SHA-256 committed in the tree: no Go, no build, and the next run
// takes it from the cache. A download that does not match fails the run and builds
// nothing. An action whose sources are not the release's, one that records no release,
// and one whose download fails, build from source as before (here on a runner without Go
// and with setup-go false, where the build fails at once: which step ran is the point).
func TestActionRelease(t *testing.T) {
	reg := fixtures.Testbed(t)
	const version = "v0.0.0-e2e.1"
	dir, dist, sums := releasedAction(t, version)
	file := "pyship-" + version + "-linux-" + runtime.GOARCH
	path := "/" + version + "/" + file
	arch := map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH]
	releaseKey := "pyship-bin-Linux-" + arch + "-" + version + "-" + sums[file][:16]
	noGo := func(urls ...string) []string {
		return append([]string{"GITHUB_EVENT_NAME=push", "GITHUB_SHA=7777777777abcdef", "PATH=" + withoutGo()}, urls...)
	}
	steps := func(t *testing.T, run actionRun, want map[string]string) {
		t.Helper()
		for step, outcome := range want {
			if run.steps[step] != outcome {
				t.Errorf("step %q: %s, want %s (%v)", step, run.steps[step], outcome, run.steps)
			}
		}
	}

	// The release: downloaded once, checked, used (the publish step names its version),
	// and kept under the release's key; the next run, on another machine, restores it.
	t.Run("released", func(t *testing.T) {
		download := serveRelease(t, version, dist, false)
		goDownload := goReleases(t, "")
		runner := newActionRunner(t)
		runner.repo = dir
		env := noGo("PYSHIP_RELEASE_URL="+download.url, "PYSHIP_GO_DOWNLOAD="+goDownload.url)
		workspace := t.TempDir()
		if err := os.CopyFS(workspace, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
			t.Fatal(err)
		}
		repo := reg + "/e2e/action-release-" + uniqueTag()
		run := runner.run(t, workspace, map[string]string{"image": repo, "base-mirror": reg, "cache-repo": "false"}, env)
		if run.code != 0 {
			t.Fatalf("the action failed with %d:\n%s", run.code, run.stderr)
		}
		steps(t, run, map[string]string{"Download pyship": "success", "Build pyship": "skipped",
			"Keep pyship": "skipped", "Keep the downloaded pyship": "success", "Build, test and push": "success"})
		if n := download.fetched(path); n != 1 {
			t.Errorf("the stand-in served %s %d times, want once", path, n)
		}
		if n := goDownload.fetched(); n != 0 {
			t.Errorf("the action downloaded Go %d times, want none", n)
		}
		for _, want := range []string{
			"pyship " + version + " is the released binary for linux/" + runtime.GOARCH,
			"downloaded pyship " + version + " from " + download.url + path + " (SHA-256 " + sums[file],
			"\npyship " + version + "\n", // the publish step's pyship version
		} {
			if !strings.Contains(run.stderr, want) {
				t.Errorf("the log does not say %q:\n%s", want, run.stderr)
			}
		}
		if strings.Contains(run.stderr, "building pyship") {
			t.Errorf("the action built pyship:\n%s", run.stderr)
		}
		if len(run.saved) == 0 || run.saved[0] != releaseKey {
			t.Errorf("the run saved %q, want %s first", run.saved, releaseKey)
		}
		checkTagged(t, run.outputs["tags"], run.outputs["digest"])

		// Another machine: the binary comes from the cache, nothing is downloaded. The
		// registry is unreachable: the publish step, which says the version, is as far as
		// this run need go.
		run = runner.run(t, workspace, map[string]string{"image": "127.0.0.1:1/e2e/app", "base-mirror": "127.0.0.1:1", "cache": "false"}, env)
		steps(t, run, map[string]string{"Restore pyship": "success", "Download pyship": "skipped", "Build pyship": "skipped",
			"Keep pyship": "skipped", "Keep the downloaded pyship": "skipped", "Build, test and push": "failure"})
		if !strings.Contains(run.stderr, "Cache restored from key: "+releaseKey+"\n") || !strings.Contains(run.stderr, "\npyship "+version+"\n") {
			t.Errorf("the second run did not restore and use the released pyship:\n%s", run.stderr)
		}
		if n := download.fetched(path); n != 1 {
			t.Errorf("the stand-in served %s %d times in all, want once", path, n)
		}
	})

	// A download that does not match the committed SHA-256 fails the run, loudly, and
	// nothing stands in for it.
	t.Run("tampered", func(t *testing.T) {
		download := serveRelease(t, version, dist, true)
		runner := newActionRunner(t)
		runner.repo = dir
		run := runner.run(t, t.TempDir(), map[string]string{"image": "127.0.0.1:1/e2e/app"}, noGo("PYSHIP_RELEASE_URL="+download.url))
		if run.code == 0 {
			t.Fatalf("the action with a tampered download succeeded")
		}
		steps(t, run, map[string]string{"Download pyship": "failure", "Build pyship": "skipped", "Keep the downloaded pyship": "skipped",
			"Build, test and push": "skipped", "Report the failure": "success"})
		want := "checksum mismatch: pyship " + version + " downloaded from " + download.url + path
		if !strings.Contains(run.stderr, "::error title=pyship::"+want) || !strings.Contains(run.summary, want) || !strings.Contains(run.summary, "release/checksums/"+version+".sha256 says "+sums[file]) {
			t.Errorf("the log or summary does not say %q:\n%s\n%s", want, run.stderr, run.summary)
		}
		if n := download.fetched(path); n != 1 || len(run.saved) != 0 {
			t.Errorf("the stand-in served %s %d times, want once; the run saved %q, want nothing", path, n, run.saved)
		}
	})

	// A download that fails: pyship is built from source and kept under the source's key,
	// which the next run restores for the release, downloading and building nothing.
	t.Run("download fails, the build is kept", func(t *testing.T) {
		download := serveRelease(t, version, dist, false)
		runner := newActionRunner(t)
		runner.repo = dir
		with := map[string]string{"image": "127.0.0.1:1/e2e/app", "base-mirror": "127.0.0.1:1", "cache": "false"}
		env := []string{"GITHUB_EVENT_NAME=push", "PYSHIP_RELEASE_URL=" + download.url + "/elsewhere"}
		run := runner.run(t, t.TempDir(), with, env)
		steps(t, run, map[string]string{"Download pyship": "success", "Build pyship": "success", "Keep pyship": "success",
			"Keep the downloaded pyship": "skipped"})
		if len(run.saved) != 1 || !strings.HasPrefix(run.saved[0], "pyship-bin-Linux-"+arch+"-") || run.saved[0] == releaseKey ||
			!strings.Contains(run.stderr, "building it from source instead") || !strings.Contains(run.stderr, "+src.") {
			t.Fatalf("the run saved %q, want the source build under the source's key:\n%s", run.saved, run.stderr)
		}
		run = runner.run(t, t.TempDir(), with, env)
		steps(t, run, map[string]string{"Restore pyship": "success", "Download pyship": "skipped", "Build pyship": "skipped",
			"Keep pyship": "skipped", "Keep the downloaded pyship": "skipped"})
		if !strings.Contains(run.stderr, "Cache restored from key: "+runner.cache.entries[0].key+"\n") {
			t.Errorf("the second run did not restore the source build:\n%s", run.stderr)
		}
		if n := download.fetched("/elsewhere" + path); n != 1 {
			t.Errorf("the download was tried %d times, want once", n)
		}
	})

	// Where the release does not apply, or cannot be had, the source build runs: here on a
	// runner without Go and with setup-go false, so it fails at once, saying so.
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		// url is PYSHIP_RELEASE_URL's path on the stand-in.
		url      string
		want     string
		download string
	}{
		{name: "Go sources after the release", want: "its Go sources are not those of the release " + version + " (a commit after it)", download: "skipped",
			change: func(t *testing.T, dir string) {
				f := filepath.Join(dir, "cmd", "pyship", "main.go")
				if err := os.WriteFile(f, append(mustRead(t, f), "\n// A change after the release.\n"...), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "no release recorded", want: "it has no release/VERSION", download: "skipped",
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "release", "VERSION")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "no checksum for the version", want: "release/checksums/" + version + ".sha256 lists no binary for linux/" + runtime.GOARCH, download: "skipped",
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "release", "checksums", version+".sha256")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "download fails", url: "/elsewhere", download: "success",
			want: "downloading pyship " + version + " from "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			download := serveRelease(t, version, dist, false)
			runner := newActionRunner(t)
			runner.repo = t.TempDir()
			copyTree(t, dir, runner.repo)
			if tc.change != nil {
				tc.change(t, runner.repo)
			}
			run := runner.run(t, t.TempDir(), map[string]string{"image": "127.0.0.1:1/e2e/app", "setup-go": "false"},
				noGo("PYSHIP_RELEASE_URL="+download.url+tc.url))
			steps(t, run, map[string]string{"Download pyship": tc.download, "Build pyship": "failure", "Keep the downloaded pyship": "skipped"})
			if !strings.Contains(run.stderr, tc.want) {
				t.Errorf("the log does not say %q:\n%s", tc.want, run.stderr)
			}
			if want := "no Go on the runner to build pyship with, and the input setup-go is false"; !strings.Contains(run.summary, want) {
				t.Errorf("the job summary does not say %q:\n%s", want, run.summary)
			}
			if tc.url != "" {
				if n := download.fetched(tc.url + path); n == 0 || !strings.Contains(run.stderr, "building it from source instead") {
					t.Errorf("the failed download (%d requests) did not lead to the source build:\n%s", n, run.stderr)
				}
			} else if n := download.fetched(path); n != 0 {
				t.Errorf("the stand-in served %s %d times, want none", path, n)
			}
		})
	}
}
