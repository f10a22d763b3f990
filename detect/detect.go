package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// DefaultPythonVersion is the Python minor version used when the repository names none.
const DefaultPythonVersion = "3.13"

// DefaultPort is the port the application is told to listen on through $PORT.
const DefaultPort = 8080

// Fact is one detected value and where it came from: "file" or "file:line", or "default".
type Fact struct {
	Value  string `json:"value"`
	Source string `json:"source"`
}

// Start is the command that starts the application, and why it was chosen.
type Start struct {
	// Command is the argv. When it needs $PORT expanded it runs under /bin/sh -c.
	Command []string `json:"command"`
	Source  string   `json:"source"`
	Reason  string   `json:"reason"`
}

// Result is what detection found.
type Result struct {
	// Python is the Python minor version, like "3.11".
	Python Fact `json:"python"`
	// Installer is the dependency installer: "pip".
	Installer string `json:"installer"`
	// Requirements are the requirement files pip installs, relative to the repository root.
	Requirements []string `json:"requirements,omitempty"`
	// Framework is the web framework the start command was derived from, if any.
	Framework string `json:"framework,omitempty"`
	Start     Start  `json:"start"`
	// Port is the port the application listens on.
	Port     int      `json:"port"`
	PortFrom string   `json:"port_source"`
	Warnings []string `json:"warnings,omitempty"`
}

// Options tune detection.
type Options struct {
	Logger hclog.Logger
}

// Error is a problem with the repository that the user has to fix. It names the file (and
// line) at fault and says what to do.
type Error struct {
	File string
	Line int
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("\nhint: " + e.Hint)
	}
	return b.String()
}

// entryScripts are the files, in order of preference, that can start an application.
var entryScripts = []string{"app.py", "main.py", "server.py", "wsgi.py"}

// pythonMarkers are files whose presence makes a directory a Python project.
var pythonMarkers = []string{"requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile"}

var (
	versionRe     = regexp.MustCompile(`^(?:python-?)?(3)\.(\d+)(?:\.\d+)?(?:[a-z]+\d*)?$`)
	mainBlockRe   = regexp.MustCompile(`(?m)^if\s+__name__\s*==\s*['"]__main__['"]\s*:`)
	flaskAppRe    = regexp.MustCompile(`(?m)^(\w+)\s*=\s*(?:flask\.)?Flask\(`)
	hardPortRe    = regexp.MustCompile(`\.run\([^)]*\bport\s*=\s*(\d+)`)
	procfileWebRe = regexp.MustCompile(`^web\s*:\s*(.*)$`)
)

// Detect inspects the repository in fsys.
func Detect(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	res := &Result{Installer: "pip", Port: DefaultPort, PortFrom: "default"}

	if !isPythonProject(fsys) {
		return nil, &Error{
			Msg: "no Python application found",
			Hint: "pyship looks for " + strings.Join(pythonMarkers, ", ") + " or one of " +
				strings.Join(entryScripts, ", ") + " at the top of the directory; point it at the directory that holds them",
		}
	}
	py, err := pythonVersion(fsys)
	if err != nil {
		return nil, err
	}
	res.Python = py

	if exists(fsys, "requirements.txt") {
		res.Requirements = []string{"requirements.txt"}
	} else if exists(fsys, "pyproject.toml") || exists(fsys, "setup.py") {
		res.Warnings = append(res.Warnings, "pyproject.toml and setup.py are not installed yet; list the dependencies in requirements.txt")
	}

	if err := startCommand(fsys, res); err != nil {
		return nil, err
	}
	log.Debug("detected", "python", res.Python.Value, "start", res.Start.Command, "reason", res.Start.Reason)
	return res, nil
}

func isPythonProject(fsys fs.FS) bool {
	for _, name := range append(pythonMarkers, entryScripts...) {
		if exists(fsys, name) {
			return true
		}
	}
	return false
}

// pythonVersion reads .python-version, then runtime.txt, else takes the default.
func pythonVersion(fsys fs.FS) (Fact, error) {
	for _, name := range []string{".python-version", "runtime.txt"} {
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Fact{}, fmt.Errorf("reading %q: %w", name, err)
		}
		line, n := firstLine(data)
		if line == "" {
			return Fact{}, &Error{File: name, Msg: "the file is empty", Hint: `write a Python version like "3.12" in it, or delete it`}
		}
		m := versionRe.FindStringSubmatch(line)
		if m == nil {
			return Fact{}, &Error{File: name, Line: n, Msg: fmt.Sprintf("%q is not a CPython 3 version", line),
				Hint: `write a version like "3.12" or "3.12.4"`}
		}
		return Fact{Value: m[1] + "." + m[2], Source: fmt.Sprintf("%s:%d", name, n)}, nil
	}
	return Fact{Value: DefaultPythonVersion, Source: "default"}, nil
}

// firstLine returns the first line that is neither blank nor a comment, and its number.
func firstLine(data []byte) (string, int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return line, n
		}
	}
	return "", 0
}

// startCommand fills res.Start, res.Framework and res.Port: Procfile's web process first,
// then the first entry script.
func startCommand(fsys fs.FS, res *Result) error {
	if found, err := procfileCommand(fsys, res); found || err != nil {
		return err
	}
	for _, name := range entryScripts {
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %q: %w", name, err)
		}
		scriptCommand(name, string(data), res)
		return nil
	}
	return &Error{
		Msg:  "no start command found",
		Hint: "pyship looked for a Procfile with a web: line and for " + strings.Join(entryScripts, ", ") + "; add one of them",
	}
}

// procfileCommand takes the Procfile's web process, if there is one.
func procfileCommand(fsys fs.FS, res *Result) (bool, error) {
	data, err := fs.ReadFile(fsys, "Procfile")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %q: %w", "Procfile", err)
	}
	var web string
	var webLine int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		m := procfileWebRe.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if webLine > 0 {
			return false, &Error{File: "Procfile", Line: n, Msg: fmt.Sprintf("a second web process (the first is on line %d)", webLine),
				Hint: "keep one web: line"}
		}
		web, webLine = strings.TrimSpace(m[1]), n
	}
	if webLine == 0 {
		return false, nil
	}
	if web == "" {
		return false, &Error{File: "Procfile", Line: webLine, Msg: "the web process has no command", Hint: "write the command after web:"}
	}
	// A shell, so that $PORT in the command expands as it does on Heroku.
	res.Start = Start{Command: []string{"/bin/sh", "-c", "exec " + web}, Source: fmt.Sprintf("Procfile:%d", webLine), Reason: "Procfile declares a web process"}
	return true, nil
}

// scriptCommand decides how to start the entry script name: as itself when it has a
// __main__ block, through flask when it only defines a Flask app, else as a plain script.
func scriptCommand(name, src string, res *Result) {
	flaskApp := flaskAppRe.FindStringSubmatchIndex(src)
	if flaskApp != nil {
		res.Framework = "flask"
	}
	switch main := mainBlockRe.FindStringIndex(src); {
	case main != nil:
		res.Start = Start{Command: []string{"python", name}, Source: fmt.Sprintf("%s:%d", name, lineOf(src, main[0])),
			Reason: name + ` runs itself under if __name__ == "__main__"`}
		hardCodedPort(name, src, res)
	case flaskApp != nil:
		module, obj := strings.TrimSuffix(name, ".py"), src[flaskApp[2]:flaskApp[3]]
		res.Start = Start{
			Command: []string{"/bin/sh", "-c", fmt.Sprintf(`exec python -m flask --app %s:%s run --host 0.0.0.0 --port "$PORT"`, module, obj)},
			Source:  fmt.Sprintf("%s:%d", name, lineOf(src, flaskApp[0])),
			Reason:  fmt.Sprintf("%s defines the Flask app %q and has no __main__ runner", name, obj),
		}
	default:
		res.Start = Start{Command: []string{"python", name}, Source: name, Reason: name + " is the first entry script found"}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s has no __main__ block or web app that pyship recognises; it is run as a script", name))
	}
}

// hardCodedPort notes a literal port passed to app.run(...): the app will not follow $PORT.
func hardCodedPort(name, src string, res *Result) {
	m := hardPortRe.FindStringSubmatchIndex(src)
	if m == nil {
		return
	}
	port, err := strconv.Atoi(src[m[2]:m[3]])
	if err != nil || port < 1 || port > 65535 {
		return
	}
	res.Port = port
	res.PortFrom = fmt.Sprintf("%s:%d", name, lineOf(src, m[0]))
	if port != DefaultPort {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s hard-codes port %d and ignores $PORT; the image exposes %d", res.PortFrom, port, port))
	}
}

func lineOf(src string, offset int) int {
	return strings.Count(src[:offset], "\n") + 1
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}
