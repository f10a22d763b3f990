package layers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/sandbox"
)

// Installer makes the dependency layer's contents.
type Installer interface {
	// Name identifies the installer and its version in cache keys.
	Name() string
	// Install creates the venv and installs the requirements, and returns the host
	// directory that holds the venv's contents.
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
	// AppDir is where the image has the repository; the install sees it there too.
	AppDir       string
	Requirements []string
	// Project is true when the repository itself is installed (pip install .).
	Project bool
	// Lock, when set, is installed exactly: pinned, hashed, without resolving.
	Lock *detect.Lock
	// Files are the repository files the install depends on.
	Files []string
	// Venv is the venv's path inside the image.
	Venv string
	// Env is the base image's environment.
	Env []string
}

// PipInstaller runs the base image's own Python in the build sandbox: `python -m venv`, then
// the venv's pip. Byte code is compiled with hash-based invalidation (PEP 552) so the layer
// is the same on every build.
type PipInstaller struct {
	Logger hclog.Logger
}

var _ Installer = (*PipInstaller)(nil)

// Name implements Installer.
func (*PipInstaller) Name() string { return "pip-sandbox-v1" }

// InstallError reports a failed dependency install, with pip's own words.
type InstallError struct {
	Files  []string
	Code   int
	Output string
	// Where is "file:line" of the requirement pip could not satisfy, when it can be found.
	Where string
}

func (e *InstallError) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	fmt.Fprintf(&b, "installing the dependencies in %s failed (pip exited with code %d)", strings.Join(e.Files, ", "), e.Code)
	if lines := errorLines(e.Output); lines != "" {
		b.WriteString(":\n" + lines)
	}
	b.WriteString("\nhint: check that every requirement names a package and version that exist on the package index (pip names the file and line above); run with --verbose for pip's full output")
	return b.String()
}

// errorLines picks pip's ERROR lines, or the last lines of its output.
func errorLines(out string) string {
	var errs []string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "ERROR:") {
			errs = append(errs, "  "+l)
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
	return strings.Join(errs, "\n")
}

const (
	sandboxRun = "/run/pyship"
	sandboxCA  = sandboxRun + "/ca.crt"
	sandboxPip = sandboxRun + "/pip.conf"
	// sandboxLock is the lock file translated into a hashed requirements file.
	sandboxLock = sandboxRun + "/locked-requirements.txt"
)

// forwardedEnv are the host's settings that pip and the builds it runs may need: package
// index, proxies. They reach the sandbox only, never the image.
var forwardedEnv = []string{
	"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}

// Install implements Installer.
func (pi *PipInstaller) Install(ctx context.Context, req InstallRequest) (string, error) {
	log := pi.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	upper := filepath.Join(req.Scratch, "upper")
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
	})
	// The repository is at the application directory, where the image will have it, so
	// editable and local-path requirements point at the right place. It is an overlay:
	// builds of the project write into it (build/, *.egg-info), never into the user's files.
	mounts := []sandbox.Mount{
		{Type: "tmpfs", Target: sandboxRun},
		{Type: "overlay", Source: req.Source, Target: req.AppDir, Scratch: filepath.Join(req.Scratch, "src")},
	}
	mounts = append(mounts, hostNetworkFiles()...)
	if ca := hostCABundle(); ca != "" {
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: ca, Target: sandboxCA, ReadOnly: true})
		env = append(env, "PIP_CERT="+sandboxCA, "SSL_CERT_FILE="+sandboxCA, "REQUESTS_CA_BUNDLE="+sandboxCA)
	}
	if conf := hostPipConf(); conf != "" {
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: conf, Target: sandboxPip, ReadOnly: true})
		env = append(env, "PIP_CONFIG_FILE="+sandboxPip)
	}
	for _, k := range forwardedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}

	python := path.Join(req.Venv, "bin", "python")
	steps := [][]string{
		{"python3", "-m", "venv", req.Venv},
	}
	if len(req.Requirements) > 0 {
		install := []string{python, "-m", "pip", "install", "--no-cache-dir", "--no-compile"}
		for _, r := range req.Requirements {
			install = append(install, "-r", r)
		}
		steps = append(steps, install)
	}
	if req.Project {
		steps = append(steps, []string{python, "-m", "pip", "install", "--no-cache-dir", "--no-compile", "."})
	}
	if req.Lock != nil {
		locked := filepath.Join(req.Scratch, "locked-requirements.txt")
		if err := os.WriteFile(locked, []byte(req.Lock.Requirements()), 0o644); err != nil {
			return "", err
		}
		mounts = append(mounts, sandbox.Mount{Type: "bind", Source: locked, Target: sandboxLock, ReadOnly: true})
		if len(req.Lock.Packages) > 0 {
			steps = append(steps, []string{python, "-m", "pip", "install", "--no-cache-dir", "--no-compile", "--require-hashes", "--no-deps", "-r", sandboxLock})
		}
		if len(req.Lock.Local) > 0 {
			steps = append(steps, append([]string{python, "-m", "pip", "install", "--no-cache-dir", "--no-compile", "--no-deps"}, localPaths(req.Lock.Local)...))
		}
	}
	steps = append(steps, []string{python, "-m", "compileall", "-q", "-f", "--invalidation-mode", "checked-hash", path.Join(req.Venv, "lib")})

	for _, args := range steps {
		var out bytes.Buffer
		w := io.MultiWriter(&out, &logWriter{log: log})
		err := sandbox.Run(ctx, sandbox.Spec{
			Root: req.Root, Upper: upper, Args: args, Env: env, Dir: req.AppDir,
			Hostname: "pyship-build", Mounts: mounts, Stdout: w, Stderr: w,
		})
		var exit *sandbox.ExitError
		switch {
		case errors.As(err, &exit) && args[0] == python && args[2] == "pip":
			return "", &InstallError{Files: installInputs(req), Code: exit.Code, Output: out.String(),
				Where: failedRequirement(req.Source, req.Files, out.String())}
		case errors.As(err, &exit):
			return "", fmt.Errorf("%s failed in the base image (exit code %d):\n%s", strings.Join(args, " "), exit.Code, errorLines(out.String()))
		case err != nil:
			return "", err
		}
	}
	venv := filepath.Join(upper, filepath.FromSlash(req.Venv))
	if _, err := os.Stat(filepath.Join(venv, "pyvenv.cfg")); err != nil {
		return "", fmt.Errorf("the base image's python3 made no venv at %s: %w", req.Venv, err)
	}
	return venv, nil
}

var (
	noMatchRe = regexp.MustCompile(`No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)`)
	nameSepRe = regexp.MustCompile(`[-_.]+`)
)

// failedRequirement finds the file and line of the requirement pip found no distribution
// for, comparing names the way PyPI does (PEP 503).
func failedRequirement(source string, files []string, pipOutput string) string {
	m := noMatchRe.FindStringSubmatch(pipOutput)
	if m == nil {
		return ""
	}
	norm := func(s string) string { return nameSepRe.ReplaceAllString(strings.ToLower(s), "-") }
	want := norm(m[1])
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

// localPaths makes lock-relative directories into arguments pip reads as paths.
func localPaths(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = "./" + strings.TrimPrefix(path.Clean(d), "./")
	}
	return out
}

// installInputs names what the install read, for messages.
func installInputs(req InstallRequest) []string {
	var inputs []string
	if req.Lock != nil {
		inputs = append(inputs, req.Lock.File)
	}
	inputs = append(inputs, req.Requirements...)
	if req.Project {
		inputs = append(inputs, "the project (pip install .)")
	}
	return inputs
}

// hostNetworkFiles binds the host's name resolution into a sandbox that shares its network.
func hostNetworkFiles() []sandbox.Mount {
	var mounts []sandbox.Mount
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
		if _, err := os.Stat(f); err == nil {
			mounts = append(mounts, sandbox.Mount{Type: "bind", Source: f, Target: f, ReadOnly: true})
		}
	}
	return mounts
}

// hostCABundle finds the host's CA bundle, which may hold a company's TLS-intercepting CA.
func hostCABundle() string {
	for _, p := range []string{
		os.Getenv("PIP_CERT"), os.Getenv("SSL_CERT_FILE"),
		"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
	} {
		if p == "" {
			continue
		}
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// hostPipConf finds the pip configuration file pip on the host would use.
func hostPipConf() string {
	candidates := []string{os.Getenv("PIP_CONFIG_FILE")}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		candidates = append(candidates, filepath.Join(x, "pip", "pip.conf"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".config", "pip", "pip.conf"), filepath.Join(home, ".pip", "pip.conf"))
	}
	candidates = append(candidates, "/etc/pip.conf", "/etc/xdg/pip/pip.conf")
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// logWriter sends a process's output to the logger, a line at a time, at debug level.
type logWriter struct {
	log     hclog.Logger
	partial []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.log.Debug(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}
