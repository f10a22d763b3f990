package layers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/pyindex"
	"github.com/pyship/pyship/sandbox"
)

// Installer makes the dependency layer's contents.
type Installer interface {
	// Name identifies the installer and its version in cache keys.
	Name() string
	// Install creates the venv and installs the requirements, and returns the host
	// directory that holds the venv's contents. A directory below req.Scratch is the
	// build's once returned: its files move into the layer's extracted tree.
	Install(ctx context.Context, req InstallRequest) (string, error)
}

// InstallRequest is what an installer works from.
type InstallRequest struct {
	// Root is the base image's file system; it must not be modified.
	Root string
	// Scratch is an empty directory the installer may use; it is removed afterwards.
	Scratch string
	// Source is the repository; Requirements are relative to it.
	Source string
	// AppTree is the application as the image holds it, extracted for the sandbox; the
	// install sees it at AppDir.
	AppTree string
	// AppDir is where the image has the repository; the install sees it there too.
	AppDir string
	// Steps are the commands to run, as the plan gives them.
	Steps []plan.InstallStep
	// Requirements and Project (the repository itself is installed) name what the
	// install reads, for messages.
	Requirements []string
	Project      bool
	// Packages are installed by name (what the code imports, for want of a dependency
	// file).
	Packages []string
	// Lock, when set, is written as a hashed requirements file to LockRequirements, a
	// path in the sandbox.
	Lock             *plan.Lock
	LockRequirements string
	// Files are the repository files the install depends on.
	Files []string
	// Venv is the venv's path inside the image.
	Venv string
	// Env is the base image's environment.
	Env []string
	// Over are trees stacked on Root for the install, topmost first, never written to:
	// system packages, a builder's compiler and headers.
	Over []string
	// Drop are lines (from 1) of requirement files that the install leaves out.
	Drop map[string][]int
	// BuildConstraints limit the build tools pip installs to build source distributions,
	// like "setuptools<46".
	BuildConstraints []string
}

// SandboxInstaller runs the plan's install steps (the base image's own python3 -m venv,
// then uv or pip from outside the venv, then compileall) in the build sandbox, with the
// host's package-index settings and CA bundle, and the build-tool constraints a retry asks
// for.
type SandboxInstaller struct {
	Logger hclog.Logger
	// CacheDir is where uv is kept once fetched.
	CacheDir string
	// Timeout bounds the whole install; default DefaultStepTimeout.
	Timeout time.Duration
	// Limits bound the install's memory, CPU and processes; default
	// sandbox.DefaultBuildLimits.
	Limits sandbox.Limits
}

var _ Installer = (*SandboxInstaller)(nil)

// Name implements Installer. The plan's steps name the installer and the key has them.
func (*SandboxInstaller) Name() string { return "sandbox-v2" }

// InstallError reports a failed dependency install, with the installer's own words.
type InstallError struct {
	// Tool is the installer that failed: "uv" or "pip".
	Tool   string
	Files  []string
	Code   int
	Output string
	// Where is "file:line" of the requirement pip could not satisfy, when it can be found.
	Where string
	// Refused are the connections the build's proxy refused, as "destination (reason)".
	Refused []string
	// MemoryLimit is set when the install was killed for going over it.
	MemoryLimit int64
	// Builder are the Debian packages (compiler, headers) of the builder the install ran
	// in, when a source build needed one; Unbuilt are the projects that failed to build.
	Builder []string
	Unbuilt []string
	// Stdlib is the unsatisfied requirement when it names a standard library module.
	Stdlib string
	// Wheels is the platform of the wheels an install for another architecture took
	// (plan.Dependencies.Wheels), and Platform the image's.
	Wheels, Platform string
}

func (e *InstallError) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	if e.MemoryLimit > 0 {
		fmt.Fprintf(&b, "installing the dependencies in %s was stopped: it used more than its %d MiB of memory", strings.Join(e.Files, ", "), e.MemoryLimit>>20)
	} else {
		fmt.Fprintf(&b, "installing the dependencies in %s failed (%s exited with code %d)", strings.Join(e.Files, ", "), e.tool(), e.Code)
	}
	if lines := errorLines(e.Output); lines != "" {
		b.WriteString(":\n" + lines)
	}
	if e.MemoryLimit > 0 {
		b.WriteString("\nhint: a source distribution that needs more memory to build can be given it with PYSHIP_BUILD_MEMORY (bytes, or with a unit: 8GiB); one that never stops allocating is a bug in it")
		return b.String()
	}
	if e.Wheels != "" && e.MemoryLimit == 0 {
		fmt.Fprintf(&b, "\nhint: an image for %s built on this %s machine takes its packages' wheels for %s; a package that has none builds here only if it is pure Python: pin a version of it with such a wheel, or build the image on a %s machine (on GitHub: runs-on: ubuntu-24.04-arm for linux/arm64)",
			e.Platform, runtime.GOARCH, e.Wheels, e.Platform)
		return b.String()
	}
	if len(e.Builder) > 0 {
		what := "a source distribution"
		if len(e.Unbuilt) > 0 {
			what = strings.Join(e.Unbuilt, ", ")
		}
		fmt.Fprintf(&b, "\nhint: %s failed to build from source even in a builder with %s; its output above names the header, library or tool it lacks: add the Debian package that has it (usually NAME-dev) to apt in pyship.toml, or pin a version that has a wheel for Python on linux/amd64", what, strings.Join(e.Builder, " "))
		return b.String()
	}
	if len(e.Refused) > 0 {
		fmt.Fprintf(&b, "\nhint: the build sandbox may not connect to this machine, and was refused %s; a package index that runs here is reachable only when this machine's PIP_INDEX_URL, PIP_EXTRA_INDEX_URL or pip.conf names it (an --index-url in a repository file does not)", strings.Join(e.Refused, ", "))
		return b.String()
	}
	if e.Stdlib != "" {
		where := "its line"
		if e.Where != "" {
			where = e.Where
		}
		fmt.Fprintf(&b, "\nhint: %s is a module of Python's standard library, which comes with Python: it is no package to install; delete %s", e.Stdlib, where)
		return b.String()
	}
	if marker := unreachableIndex(e.Output); marker != "" {
		fmt.Fprintf(&b, "\nhint: %s could not reach the package index (%s), so every requirement reads as missing; check PIP_INDEX_URL / pip.conf on this machine (pyship passes them on), and that the index answers from here", e.tool(), marker)
		return b.String()
	}
	fmt.Fprintf(&b, "\nhint: check that every requirement names a package and version that exist on the package index (the lines above name it); run with --verbose for %s's full output", e.tool())
	return b.String()
}

func (e *InstallError) tool() string {
	if e.Tool == "" {
		return "pip"
	}
	return e.Tool
}

// unreachableIndexSigns are what pip and uv print when they cannot reach an index at all.
var unreachableIndexSigns = []string{
	"Failed to establish a new connection", "Name or service not known", "Temporary failure in name resolution",
	"ProxyError", "Could not fetch URL", "Connection refused", "Max retries exceeded", "403 Forbidden",
	"Request failed after", "dns error", "invalid peer certificate",
}

// unreachableIndex finds the first sign in pip's output that the index was never reached.
func unreachableIndex(out string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, sign := range unreachableIndexSigns {
			if strings.Contains(line, sign) {
				line = strings.TrimSpace(line)
				if len(line) > 200 {
					line = line[:200] + "..."
				}
				return line
			}
		}
	}
	return ""
}

// errorLines picks pip's ERROR lines or uv's error with its causes and hints, or the last
// lines of the output. The first errors a compiler or a setup script printed come before
// them: the installer's own summary of a failed source build ("command '/usr/bin/gcc'
// failed") does not say what was missing.
func errorLines(out string) string {
	var errs []string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	inUV := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "ERROR:"), strings.HasPrefix(l, "error:"):
			errs = append(errs, "  "+l)
			inUV = strings.HasPrefix(l, "error:")
		case inUV && (strings.HasPrefix(l, "  cause: ") || strings.HasPrefix(l, "  hint: ")):
			errs = append(errs, "  "+l)
		default:
			inUV = false
		}
	}
	if len(errs) == 0 {
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		for _, l := range lines {
			errs = append(errs, "  "+l)
		}
	}
	if diag := buildErrors(out); len(diag) > 0 {
		errs = append(append([]string{"  the build's first errors:"}, diag...), errs...)
	}
	return strings.Join(errs, "\n")
}

// buildErrorRe finds a compiler's diagnostic (file.c:12:5: error: ..., fatal error: ...),
// a setup script's own "Error: ..." line, or the exception a build backend raised (the last
// line of its traceback: "flit_core.config.ConfigError: description must be specified").
var buildErrorRe = regexp.MustCompile(`\.(?:c|cc|cpp|cxx|h|hpp|pyx|f90|rs):\d+(?::\d+)?:\s+(?:fatal )?error\b|\bfatal error:|^\s*Error: |^\s*(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception): `)

// buildErrors lists the first few distinct build diagnostics in out, trimmed.
func buildErrors(out string) []string {
	var diag []string
	for _, l := range strings.Split(out, "\n") {
		if !buildErrorRe.MatchString(l) {
			continue
		}
		l = "    " + strings.TrimSpace(l)
		if len(l) > 240 {
			l = l[:240] + "..."
		}
		if !slices.Contains(diag, l) {
			diag = append(diag, l)
		}
		if len(diag) == 5 {
			break
		}
	}
	return diag
}

const (
	sandboxRun = "/run/pyship"
	sandboxCA  = sandboxRun + "/ca.crt"
	sandboxPip = sandboxRun + "/pip.conf"
	// sandboxBuildConstraints limits the build tools of source builds.
	sandboxBuildConstraints = sandboxRun + "/build-constraints.txt"
)

// forwardedEnv are the host's settings that pip and the builds it runs may need: the
// package index. They reach the sandbox only, never the image. The host's proxies are
// not among them: the sandbox reaches the network only through pyship's proxy, which
// uses them.
var forwardedEnv = []string{
	"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES",
}

// Install implements Installer.
func (pi *SandboxInstaller) Install(ctx context.Context, req InstallRequest) (string, error) {
	log := pi.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	timeout := pi.Timeout
	if timeout <= 0 {
		timeout = DefaultStepTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mounts, env, err := installSandbox(req)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(req.Steps, func(st plan.InstallStep) bool { return st.Kind == plan.StepUV }) {
		uv, err := uvBinary(ctx, pi.CacheDir, log)
		if err != nil {
			return "", err
		}
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: uv, Target: plan.UVPath, ReadOnly: true})
		env = append(env, uvEnv(pyindex.HostIndexes(), len(req.BuildConstraints) > 0)...)
	}
	upper := filepath.Join(req.Scratch, "upper")
	egress, refused := buildEgress(log)
	for _, st := range req.Steps {
		if st.Kind == plan.StepSetuptools {
			importer, err := setuptoolsImporter(upper, req.Venv)
			if err != nil {
				return "", err
			}
			if importer == "" {
				continue
			}
			log.Info("the dependencies import setuptools at run time, and nothing installed it: installing it", "file", importer, "requirement", plan.SetuptoolsRequirement)
		}
		out := newTail(outputTail)
		w := io.MultiWriter(out, logWriter(log))
		began := time.Now()
		err := sandbox.Exec(ctx, sandbox.ExecSpec{
			Root: req.Root, Over: req.Over, Upper: upper, Args: st.Args, Env: env, Dir: req.AppDir,
			Hostname: "pyship-build", Mounts: mounts, Egress: egress, Limits: pi.Limits, Stdout: w, Stderr: w,
		})
		if err := stepFailure(err, st, req, out.String(), timeout, refused, log); err != nil {
			return "", err
		}
		log.Debug("install step done", "step", st.Kind, "took", time.Since(began).Round(time.Millisecond))
	}
	// The sandbox wrote the upper directory: the venv is found there without following
	// any link it may have made, so nothing outside it is packed.
	venv, err := realDirIn(upper, req.Venv)
	if err != nil {
		return "", fmt.Errorf("the venv the install made: %w", err)
	}
	if info, err := os.Lstat(filepath.Join(venv, "pyvenv.cfg")); err != nil || !info.Mode().IsRegular() {
		return "", fmt.Errorf("the base image's python3 made no venv at %s: %w", req.Venv, err)
	}
	if err := dropUVState(venv); err != nil {
		return "", err
	}
	return venv, nil
}

// dropUVState removes what uv leaves in a venv for itself: the .lock file it takes while
// it installs, and the uv_cache.json it writes into the metadata of a project it
// installed from a local directory (with its line in RECORD), which holds the time of the
// install and would make every build's layer different. Neither tells the app anything.
// The venv is the sandbox's work: it is read and changed through an os.Root, so no link
// in it leads outside.
func dropUVState(venv string) error {
	root, err := os.OpenRoot(venv)
	if err != nil {
		return err
	}
	defer root.Close()
	if info, err := root.Lstat(".lock"); err == nil && info.Mode().IsRegular() {
		if err := root.Remove(".lock"); err != nil {
			return fmt.Errorf("removing uv's lock from the venv: %w", err)
		}
	}
	files, err := fs.Glob(root.FS(), "lib/python*/site-packages/*.dist-info/uv_cache.json")
	if err != nil {
		return err
	}
	for _, f := range files {
		if info, err := root.Lstat(f); err != nil || !info.Mode().IsRegular() {
			continue
		}
		if err := root.Remove(f); err != nil {
			return fmt.Errorf("removing %s from the venv: %w", f, err)
		}
		dir := path.Dir(f)
		record := path.Join(dir, "RECORD")
		info, err := root.Lstat(record)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		data, err := root.ReadFile(record)
		if err != nil {
			return err
		}
		var kept []string
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if !strings.HasPrefix(line, path.Base(dir)+"/uv_cache.json,") {
				kept = append(kept, line)
			}
		}
		if err := root.WriteFile(record, []byte(strings.Join(kept, "")), info.Mode().Perm()); err != nil {
			return fmt.Errorf("rewriting %s in the venv: %w", record, err)
		}
	}
	return nil
}

// installSandbox gives the install's mounts and environment: the application with the
// files the install reads, the host's CA bundle and pip settings, the lock as a hashed
// requirements file, and the build-tool constraints. None of it reaches the image.
func installSandbox(req InstallRequest) ([]sandbox.Mount, []string, error) {
	env := mergeEnv(req.Env, []string{
		"HOME=/root",
		"LANG=C.UTF-8",
		"PYTHONHASHSEED=0",
		"PYTHONDONTWRITEBYTECODE=1",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(DefaultEpoch.Unix(), 10),
		"PIP_ROOT_USER_ACTION=ignore",
		"PIP_PROGRESS_BAR=off",
		"PIP_NO_INPUT=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		// Source builds compile in a directory with a random name: without debug
		// information, it stays out of the extension, which is then the same every build.
		"CFLAGS=-g0",
		"CXXFLAGS=-g0",
	})
	// The application is at the application directory, where the image will have it, so
	// editable and local-path requirements point at the right place, with the files the
	// install reads on top. It is an overlay: builds of the project write into it (build/,
	// *.egg-info), never into the user's files.
	inputs, err := copyInputs(req.Source, req.Files, req.Drop, filepath.Join(req.Scratch, "inputs"))
	if err != nil {
		return nil, nil, err
	}
	mounts := []sandbox.Mount{
		{Type: "tmpfs", Target: sandboxRun},
		{Type: "overlay", Source: inputs + ":" + req.AppTree, Target: req.AppDir, Scratch: filepath.Join(req.Scratch, "src")},
	}
	if ca := pyindex.HostCABundle(); ca != "" {
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: ca, Target: sandboxCA, ReadOnly: true})
		env = append(env, "PIP_CERT="+sandboxCA, "SSL_CERT_FILE="+sandboxCA, "REQUESTS_CA_BUNDLE="+sandboxCA)
	}
	if conf := pyindex.HostPipConf(); conf != "" {
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: conf, Target: sandboxPip, ReadOnly: true})
		env = append(env, "PIP_CONFIG_FILE="+sandboxPip)
	}
	for _, k := range forwardedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if len(req.BuildConstraints) > 0 {
		file, err := writeScratch(req.Scratch, "build-constraints.txt", strings.Join(req.BuildConstraints, "\n")+"\n")
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: file, Target: sandboxBuildConstraints, ReadOnly: true})
		// Every source build in an environment of its own (older pips build a project
		// without pyproject.toml with the venv's setuptools), which pip before 25.3 gives
		// PIP_CONSTRAINT and later ones PIP_BUILD_CONSTRAINT.
		env = append(env, "PIP_USE_PEP517=1", "PIP_CONSTRAINT="+sandboxBuildConstraints, "PIP_BUILD_CONSTRAINT="+sandboxBuildConstraints)
	}
	if req.Lock != nil {
		file, err := writeScratch(req.Scratch, "locked-requirements.txt", req.Lock.Requirements())
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: file, Target: req.LockRequirements, ReadOnly: true})
	}
	return mounts, env, nil
}

// uvUnreadableRe is uv's word for a requirements file it cannot read: its syntax, not what
// it asks for.
var uvUnreadableRe = regexp.MustCompile(`(?m)^\s*(?:error|cause): (?:Couldn't parse requirement in .*|Error parsing included file in .*|Trailing .*|Unsupported option .*|Unexpected '-', expected .*|Invalid URL .*)$`)

// uvCannotRead returns the first line of uv's output that says it cannot read the
// requirements files, or "".
func uvCannotRead(out string) string {
	return strings.TrimSpace(uvUnreadableRe.FindString(out))
}

// uvCache is where uv keeps what it downloads and unpacks during an install: in the
// sandbox's own writable layer, on the venv's file system, so uv hard-links the unpacked
// files into the venv instead of copying them (0.2 to 0.4 s of a Django install, whose
// 30 packages unpack to 82 MB). It goes with the install's scratch: no later build reads
// it, so no build can poison another's. The layer's tree takes the venv's files by
// moving them all the same (treeMirror.moveFile).
const uvCache = "/root/.cache/pyship-uv"

// uvEnv has uv install as pip would on this machine: from indexes, the ones pip uses (uv reads
// neither PIP_* variables nor pip.conf), weighing every index for the best version as pip
// does, trusting the CA bundle handed in (SSL_CERT_FILE), with a cache of the install's
// own (uvCache, shared by its steps and removed with its scratch), no configuration file
// of the repository's, plain output and never a Python of its own.
func uvEnv(indexes []string, buildConstraints bool) []string {
	env := []string{
		"UV_CACHE_DIR=" + uvCache, "UV_LINK_MODE=hardlink", "UV_NO_PROGRESS=1", "NO_COLOR=1", "UV_NO_CONFIG=1",
		"UV_PYTHON_DOWNLOADS=never", "UV_INDEX_STRATEGY=unsafe-best-match",
		// The project's [tool.uv.sources] (git, paths, other indexes), which pip ignores.
		"UV_NO_SOURCES=1",
	}
	if indexes[0] != pyindex.DefaultIndex {
		// Only a host that names its index sets uv's: uv puts it above an --index-url in a
		// requirements file, which pip lets win, and PyPI is uv's default anyway.
		env = append(env, "UV_DEFAULT_INDEX="+indexes[0])
	}
	if len(indexes) > 1 {
		env = append(env, "UV_INDEX="+strings.Join(indexes[1:], " "))
	}
	if v := os.Getenv("PIP_TRUSTED_HOST"); v != "" {
		env = append(env, "UV_INSECURE_HOST="+v)
	}
	if v := os.Getenv("PIP_DEFAULT_TIMEOUT"); v != "" {
		env = append(env, "UV_HTTP_TIMEOUT="+v)
	}
	if buildConstraints {
		env = append(env, "UV_BUILD_CONSTRAINT="+sandboxBuildConstraints)
	}
	return env
}

// writeScratch writes a file for the sandbox to read in the install's scratch directory.
func writeScratch(scratch, name, content string) (string, error) {
	file := filepath.Join(scratch, name)
	return file, os.WriteFile(file, []byte(content), 0o644)
}

// stepFailure turns a failed install step into an error that says what to do, by the
// step's kind. Files compileall cannot compile are a warning: they fail only if imported.
func stepFailure(err error, st plan.InstallStep, req InstallRequest, out string, timeout time.Duration, refused func() []string, log hclog.Logger) error {
	var exit *sandbox.ExitError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &TimeoutError{What: "installing the dependencies (" + strings.Join(installInputs(req), ", ") + ")", Limit: timeout, Output: out}
	case errors.As(err, &exit) && exit.OutOfMemory:
		return &InstallError{Tool: stepTool(st), Files: installInputs(req), Code: exit.Code, Output: out, MemoryLimit: exit.MemoryLimit}
	case errors.As(err, &exit) && (st.Kind == plan.StepPip || st.Kind == plan.StepUV || st.Kind == plan.StepSetuptools):
		return &InstallError{Tool: stepTool(st), Files: installInputs(req), Code: exit.Code, Output: out,
			Where: failedRequirement(req.Source, req.Files, out), Refused: refused(), Stdlib: stdlibRequirement(out)}
	case errors.As(err, &exit) && exit.Code == 1 && st.Kind == plan.StepCompile:
		// Files this Python cannot compile (Python 2 code in an old package's unused
		// modules, say) fail at import only if imported, as they would after pip's own
		// compile step; the rest of the venv is compiled.
		if failed := uncompiled(out); len(failed) > 0 {
			log.Warn("some files in the dependencies are not valid Python for this version; they fail if imported", "files", strings.Join(failed, " "))
			return nil
		}
		return fmt.Errorf("%s failed in the base image (exit code %d):\n%s", st.Line(), exit.Code, errorLines(out))
	case errors.As(err, &exit):
		return fmt.Errorf("%s failed in the base image (exit code %d):\n%s", st.Line(), exit.Code, errorLines(out))
	default:
		return err
	}
}

// stepTool names the installer a step runs, for messages: "uv" or "pip".
func stepTool(st plan.InstallStep) string {
	if st.Kind == plan.StepUV || (len(st.Args) > 0 && st.Args[0] == plan.UVPath) {
		return plan.InstallerUV
	}
	return plan.InstallerPip
}

var uncompiledRe = regexp.MustCompile(`\*\*\* Error compiling '([^']+)'`)

// uncompiled lists (up to 10) the files compileall's output says it could not compile.
func uncompiled(output string) []string {
	var files []string
	for _, m := range uncompiledRe.FindAllStringSubmatch(output, 10) {
		files = append(files, m[1])
	}
	return files
}

var (
	// noMatchRe is pip's word for a requirement no distribution satisfies, then uv's for
	// one the index does not have and for one whose version it does not have.
	noMatchRe = regexp.MustCompile(`No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)|Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry and you require|Because there is no version of ([A-Za-z0-9][A-Za-z0-9._-]*?)(?:\[[^\]]*\])?(?:[=<>!~][^ ]*)? and you require`)
	nameSepRe = regexp.MustCompile(`[-_.]+`)
)

// unmatched is the requirement the installer's output says no distribution satisfies, or "".
func unmatched(out string) string {
	m := noMatchRe.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1] + m[2] + m[3]
}

// failedRequirement finds the file and line of the requirement the installer found no
// distribution for, comparing names the way PyPI does (PEP 503).
func failedRequirement(source string, files []string, out string) string {
	name := unmatched(out)
	if name == "" {
		return ""
	}
	norm := func(s string) string { return nameSepRe.ReplaceAllString(strings.ToLower(s), "-") }
	want := norm(name)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(source, filepath.FromSlash(f)))
		if err != nil {
			continue
		}
		for n, line := range strings.Split(string(data), "\n") {
			name := reqNameRe.FindString(strings.TrimSpace(line))
			if name != "" && norm(name) == want {
				return fmt.Sprintf("%s:%d", f, n+1)
			}
		}
	}
	return ""
}

var reqNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*`)

// installInputs names what the install read, for messages.
func installInputs(req InstallRequest) []string {
	var inputs []string
	if req.Lock != nil {
		inputs = append(inputs, req.Lock.File)
	}
	inputs = append(inputs, req.Requirements...)
	if req.Project {
		inputs = append(inputs, "the project (install .)")
	}
	if len(req.Packages) > 0 {
		inputs = append(inputs, "what the code imports ("+strings.Join(req.Packages, " ")+")")
	}
	return inputs
}

// logWriter sends a process's output to the logger, a line at a time, at debug level,
// each line cut at sandbox.MaxLine.
func logWriter(log hclog.Logger) *sandbox.Lines {
	return &sandbox.Lines{Emit: func(line string, _ bool) { log.Debug(line) }}
}

// realDirIn returns root/rel after checking that every part of rel is a directory, not a
// link.
func realDirIn(root, rel string) (string, error) {
	dir := root
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+rel), "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		info, err := os.Lstat(dir)
		if err != nil {
			return "", err
		}
		if !info.IsDir() {
			return "", fmt.Errorf("%s is not a directory (%s)", rel, info.Mode().Type())
		}
	}
	return dir, nil
}

// copyInputs copies the repository files the install reads (requirements files, lock
// files) into dir, for the sandbox: they are read inside the repository only, and the
// copies belong to the sandbox's root.
func copyInputs(source string, files []string, drop map[string][]int, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(source)
	if err != nil {
		return "", err
	}
	defer root.Close()
	for _, f := range files {
		data, err := readRegular(root, f)
		if err != nil {
			return "", err
		}
		if lines := drop[f]; len(lines) > 0 {
			data = commentOut(data, lines)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, chownTree(dir)
}

// commentOut turns the given lines (from 1) of a requirements file into comments.
func commentOut(data []byte, lines []int) []byte {
	all := strings.Split(string(data), "\n")
	for _, n := range lines {
		if n >= 1 && n <= len(all) {
			all[n-1] = "# left out by pyship: " + all[n-1]
		}
	}
	return []byte(strings.Join(all, "\n"))
}

// readRegular reads a regular file of at most 64 MiB inside root.
func readRegular(root *os.Root, name string) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const limit = 64 << 20
	if !info.Mode().IsRegular() || info.Size() > limit {
		return nil, fmt.Errorf("%s is not a regular file of at most %d MiB", name, limit>>20)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// chownTree gives dir and everything in it to the sandbox's root.
func chownTree(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	id := sandbox.HostID(0)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

// buildEgress is what a build may reach: the network, through pyship's proxy, and the
// package indexes the user configured even if they run on this machine. refused lists
// the connections the proxy refused so far, for messages.
func buildEgress(log hclog.Logger) (e *sandbox.Egress, refused func() []string) {
	var (
		mu   sync.Mutex
		seen []string
	)
	e = &sandbox.Egress{Refused: func(dest, reason string) {
		log.Warn("the build sandbox tried to connect to this machine and was refused", "to", dest, "because", reason)
		mu.Lock()
		defer mu.Unlock()
		if s := dest + " (" + reason + ")"; !slices.Contains(seen, s) && len(seen) < 5 {
			seen = append(seen, s)
		}
	}}
	refused = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	var urls []string
	for _, k := range []string{"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"} {
		urls = append(urls, strings.Fields(os.Getenv(k))...)
	}
	if conf := pyindex.HostPipConf(); conf != "" {
		if data, err := os.ReadFile(conf); err == nil {
			urls = append(urls, pyindex.PipConfIndexes(string(data))...)
		}
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		e.Allow = append(e.Allow, net.JoinHostPort(u.Hostname(), port))
	}
	return e, refused
}
