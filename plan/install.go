package plan

import (
	"cmp"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pyship/pyship/detect"
)

// LockRequirements is where the dependency install sees the lock, translated into a
// hashed requirements file (Lock.Requirements).
const LockRequirements = "/run/pyship/locked-requirements.txt"

// Kinds of install step: they tell the installer how to read a failure.
const (
	// StepVenv creates the venv with the base's python3.
	StepVenv = "venv"
	// StepPip runs pip, StepUV uv; a failure is the requirements' fault.
	StepPip = "pip"
	StepUV  = "uv"
	// StepSetuptools installs setuptools (SetuptoolsRequirement) when, and only when, the
	// installed code imports pkg_resources or setuptools and nothing installed it: every
	// venv had it before Python 3.12, and much code still imports it at run time
	// (gunicorn before 22 does).
	StepSetuptools = "setuptools"
	// StepCompile compiles the venv's byte code; files this Python cannot compile fail
	// only when imported, so they are warned about, not fatal.
	StepCompile = "compile"
)

// InstallStep is one command of the dependency install, as it runs in the build sandbox:
// the argv with the paths the sandbox sees, the repository at the application directory.
type InstallStep struct {
	Kind string   `json:"kind"`
	Args []string `json:"args"`
}

// Line is the step's command on one line, for people: an argument of several lines (a
// script given to python -c) shows as its first line and an ellipsis; `pyship plan
// --json` has it whole.
func (st InstallStep) Line() string {
	args := make([]string, len(st.Args))
	for i, a := range st.Args {
		if first, _, ok := strings.Cut(a, "\n"); ok {
			a = "'" + first + " …'"
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// BuildStep is a command run once the dependencies are installed, in the application
// directory, with the image's environment.
type BuildStep struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Source  string   `json:"source"`
	Reason  string   `json:"reason"`
	// Data is a directory, relative to the application directory, where the step makes
	// data the app changes at run time (a database): what is there belongs to the app's
	// user.
	Data string `json:"data,omitempty"`
}

// Lock is a lock file the install follows exactly: every package pinned and hashed.
type Lock struct {
	File     string          `json:"file"`
	Format   string          `json:"format"`
	Packages []LockedPackage `json:"packages"`
	// Local are directories (relative to the repository) the lock installs from source,
	// "." for the project itself; they cannot be hash-checked, and are installed after the
	// packages, without their dependencies.
	Local []string `json:"local,omitempty"`
}

// LockedPackage is one pinned package.
type LockedPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// URL is set for a package locked to a direct URL instead of an index.
	URL    string   `json:"url,omitempty"`
	Marker string   `json:"marker,omitempty"`
	Hashes []string `json:"hashes"`
}

// Requirements renders the lock as a pip requirements file for --require-hashes --no-deps:
// what the install reads at LockRequirements.
func (l *Lock) Requirements() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Translated by pyship from %s (%s); every package pinned and hashed.\n", l.File, l.Format)
	for _, p := range l.Packages {
		if p.URL != "" {
			fmt.Fprintf(&b, "%s @ %s", p.Name, p.URL)
		} else {
			fmt.Fprintf(&b, "%s==%s", p.Name, p.Version)
		}
		if p.Marker != "" {
			fmt.Fprintf(&b, " ; %s", p.Marker)
		}
		for _, h := range p.Hashes {
			fmt.Fprintf(&b, " \\\n    --hash=%s", h)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func lockOf(l *detect.Lock) *Lock {
	if l == nil {
		return nil
	}
	out := &Lock{File: l.File, Format: l.Format, Local: l.Local}
	for _, p := range l.Packages {
		out.Packages = append(out.Packages, LockedPackage(p))
	}
	return out
}

func buildStepsOf(steps []detect.BuildStep) []BuildStep {
	var out []BuildStep
	for _, st := range steps {
		out = append(out, BuildStep(st))
	}
	return out
}

// CutoffPip is the pip that installs when the install resolves as of a time
// (--uploaded-prior-to): pinned, so the install is the same on every build. Python 3.9 gets
// the last pip that runs on it (26.0.1, which has the option too).
func CutoffPip(python string) string {
	if python == "3.9" {
		return "26.0.1"
	}
	return "26.3"
}

// SetuptoolsRequirement is the setuptools StepSetuptools installs: the last major version
// with pkg_resources.
const SetuptoolsRequirement = "setuptools<82"

// Installers: the tools that install the dependencies into the venv. Neither is in the
// image: each runs from the build sandbox's /run/pyship.
const (
	// InstallerUV is uv at UVVersion, the default: a static binary that installs into the
	// venv with the base's Python.
	InstallerUV = "uv"
	// InstallerPip is pip, from a venv of its own that the base's python3 makes.
	InstallerPip = "pip"
)

// UVVersion is the uv release that installs the dependencies. The build verifies its
// hash; a new version is a new dependency layer.
const UVVersion = "0.13.9"

// Where the build sandbox has the installer.
const (
	// UVPath is the uv binary.
	UVPath = "/run/pyship/uv"
	// PipTool is the venv pip runs from: on the install's own writes, which every step
	// sees and the image does not (only the venv is packed).
	PipTool = "/var/lib/pyship/pip"
)

// installSteps are the commands that make the venv: python -m venv with no installer in
// it, the installer (pip pinned first when it resolves as of a time), then hash-checked
// byte code (PEP 552), so the layer is the same on every build.
func installSteps(d *Dependencies, python string) []InstallStep {
	venvPython := path.Join(d.Venv, "bin", "python")
	steps := []InstallStep{{Kind: StepVenv, Args: []string{"python3", "-m", "venv", "--without-pip", d.Venv}}}
	kind, install := StepUV, []string{UVPath, "pip", "install", "--python", venvPython}
	if d.UploadedBefore != "" {
		install = append(install, "--exclude-newer", d.UploadedBefore)
	}
	if d.Wheels != "" {
		install = append(install, "--python-platform", d.Wheels)
	}
	if d.Installer == InstallerPip {
		toolPython := path.Join(PipTool, "bin", "python")
		steps = append(steps, InstallStep{Kind: StepVenv, Args: []string{"python3", "-m", "venv", PipTool}})
		pip := []string{toolPython, "-m", "pip", "--python", venvPython, "install", "--no-cache-dir", "--no-compile"}
		if d.UploadedBefore != "" {
			// Not every pip has the option; the tool's venv gets a known one that does.
			steps = append(steps, InstallStep{Kind: StepPip,
				Args: []string{toolPython, "-m", "pip", "install", "--no-cache-dir", "--upgrade", "pip==" + CutoffPip(python)}})
			pip = append(pip, "--uploaded-prior-to="+d.UploadedBefore)
		}
		kind, install = StepPip, pip
	}
	with := func(args ...string) InstallStep {
		return InstallStep{Kind: kind, Args: append(slices.Clone(install), args...)}
	}
	prepared := len(steps)
	if len(d.Requirements) > 0 {
		var args []string
		for _, r := range d.Requirements {
			args = append(args, "-r", r)
		}
		steps = append(steps, with(args...))
	}
	if d.Project {
		steps = append(steps, with("."))
	}
	if len(d.Packages) > 0 {
		steps = append(steps, with(d.Packages...))
	}
	if l := d.Lock; l != nil {
		if len(l.Packages) > 0 {
			steps = append(steps, with("--require-hashes", "--no-deps", "-r", d.LockRequirements))
		}
		if len(l.Local) > 0 {
			steps = append(steps, with(append([]string{"--no-deps"}, localPaths(l.Local)...)...))
		}
	}
	if len(steps) > prepared {
		steps = append(steps, InstallStep{Kind: StepSetuptools, Args: append(slices.Clone(install), SetuptoolsRequirement)})
	}
	return append(steps, InstallStep{Kind: StepCompile, Args: []string{venvPython, "-c", compileScript, path.Join(d.Venv, "lib")}})
}

// compileScript is what `python -m compileall -q -f -j 0 --invalidation-mode checked-hash`
// does, file for file and byte for byte (each file goes through compileall.compile_file),
// with workers forked from the process that listed the files. compileall's own workers
// come from a fork server, a fresh interpreter that starts after the listing: 0.3 s of a
// small venv's 0.4 s. One worker per 50 files, at most one per CPU. A worker that dies
// (a signal, the memory limit) fails the step with exit code 2: files would lack byte
// code, and compileall's exit code 1 means only files that are not valid Python.
const compileScript = `import compileall, os, py_compile, sys
def walk(d):
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        print("Can't list {!r}".format(d))
        return
    for e in entries:
        if e.name == "__pycache__":
            continue
        if e.is_dir(follow_symlinks=False):
            yield from walk(e.path)
        elif e.name.endswith(".py"):
            yield e.path
files = list(walk(sys.argv[1]))
n = max(1, min(len(os.sched_getaffinity(0)), len(files) // 50))
sys.stdout.reconfigure(line_buffering=True)
def part(i):
    return all([compileall.compile_file(f, force=True, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH) for f in files[i::n]])
kids = []
for i in range(1, n):
    pid = os.fork()
    if pid == 0:
        os._exit(0 if part(i) else 1)
    kids.append(pid)
ok, died = part(0), False
for pid in kids:
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code not in (0, 1):
        print("a compile worker ended with {}".format(code))
        died = True
    ok = code == 0 and ok
sys.exit(2 if died else 0 if ok else 1)
`

// wheelPlatforms are the wheels a build on another machine installs for a target
// architecture: manylinux_2_28, which the glibc of every Debian since 10 (buster) and of
// the official Python images runs.
var wheelPlatforms = map[string]string{
	"amd64": "x86_64-manylinux_2_28",
	"arm64": "aarch64-manylinux_2_28",
}

// planWheels decides how the dependencies of an image for another architecture than the
// build machine's are installed: wheels for the target, by uv, with this machine's python
// (byte code is the same on every architecture). installerSource says where the
// installer was chosen.
func (p *Plan) planWheels(installerSource string, opts Options) error {
	os, arch, _ := strings.Cut(p.Platform, "/")
	arch, _, _ = strings.Cut(arch, "/")
	host := cmp.Or(opts.HostArch, runtime.GOARCH)
	if arch == host {
		return nil
	}
	wheels, ok := wheelPlatforms[arch]
	if !ok || os != "linux" {
		return fmt.Errorf("platform %s: pyship builds for linux/amd64 and linux/arm64", p.Platform)
	}
	if p.Dependencies.Installer != InstallerUV {
		return fmt.Errorf("%s: installer %q cannot install for %s on this %s machine; uv can (installer = \"uv\"), or build on a %s machine",
			installerSource, p.Dependencies.Installer, p.Platform, host, p.Platform)
	}
	p.Dependencies.Wheels = wheels
	p.decide("platform", p.Platform+" on a linux/"+host+" machine",
		"--platform (or PYSHIP_PLATFORM)",
		"dependencies from wheels for "+wheels+", installed by this machine's python, with no emulation; a package with no such wheel builds only if it is pure Python (one that compiles code fails the build: build it on a "+p.Platform+" runner)")
	return nil
}

// localPaths makes lock-relative directories into arguments pip reads as paths.
func localPaths(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = "./" + strings.TrimPrefix(path.Clean(d), "./")
	}
	return out
}

// installCommand is how the installer's command reads in messages and history.
func (d *Dependencies) installCommand() string {
	if d.Installer == InstallerPip {
		return "pip install"
	}
	return "uv " + UVVersion + " pip install"
}

// History is the history line (created_by) of each layer pyship adds to the base.
type History struct {
	// System is the system layer's, when the plan asks for Debian packages. A build
	// that finds runtime libraries for source-built dependencies names them too, with
	// SystemHistory.
	System       string `json:"system,omitempty"`
	Dependencies string `json:"dependencies"`
	User         string `json:"user"`
	App          string `json:"app"`
	// BuildSteps is the line of the one layer that holds what all the steps wrote.
	BuildSteps string `json:"build_steps,omitempty"`
}

// SystemHistory is the system layer's history line when it holds packages.
// Packages are named sorted, once each.
func SystemHistory(packages []string) string {
	sorted := slices.Compact(slices.Sorted(slices.Values(packages)))
	return "pyship: apt-get install " + strings.Join(sorted, " ")
}

func (p *Plan) history() History {
	d := p.Dependencies
	tool := d.installCommand()
	deps := "python -m venv --without-pip " + d.Venv
	for _, r := range d.Requirements {
		deps += " && " + tool + " -r " + r
	}
	if d.UploadedBefore != "" {
		deps += " (as uploaded before " + d.UploadedBefore + ")"
	}
	if d.Project {
		deps += " && " + tool + " ."
	}
	if len(d.Packages) > 0 {
		deps += " && " + tool + " " + strings.Join(d.Packages, " ")
	}
	if d.Lock != nil {
		deps += " && " + tool + " --require-hashes --no-deps (" + d.Lock.File + ")"
	}
	h := History{
		Dependencies: "pyship: " + deps,
		User:         fmt.Sprintf("pyship: user %s (%d:%d)", UserName, UserID, GroupID),
		App:          "pyship: application files to " + p.App.Dir,
	}
	if p.System != nil && len(p.System.Packages) > 0 {
		h.System = SystemHistory(p.System.Packages)
	}
	if len(p.BuildSteps) > 0 {
		var cmds []string
		for _, st := range p.BuildSteps {
			cmds = append(cmds, strings.Join(st.Command, " "))
		}
		h.BuildSteps = "pyship: build steps: " + strings.Join(cmds, " && ")
	}
	return h
}

// Duration is a time.Duration that JSON writes as a string like "30s".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"30s\"", b)
	}
	if v <= 0 {
		return fmt.Errorf("%q must be positive", b)
	}
	*d = Duration(v)
	return nil
}
