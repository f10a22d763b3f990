package detect

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

var staticRootRe = regexp.MustCompile(`(?m)^STATIC_ROOT\s*=\s*(.+)$`)

// buildSteps decides the framework build steps: Django's collectstatic when the settings
// set STATIC_ROOT, whatever gives the start command, unless the configuration says
// otherwise. django.collectstatic = true is never dropped: when the step cannot run, that
// is an error that says why.
func buildSteps(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
	var forced *bool
	if cfg != nil {
		forced = cfg.Django.Collectstatic
	}
	if forced != nil && !*forced {
		return nil
	}
	if res.django == nil && forced == nil {
		return nil
	}
	collect := BuildStep{
		Name:    "collectstatic",
		Command: []string{"python", "manage.py", "collectstatic", "--noinput"},
	}
	if forced != nil {
		key := cfg.Source("django.collectstatic")
		file, line := ParseSource(key)
		if !exists(fsys, "manage.py") {
			return &Error{File: file, Line: line, Msg: "django.collectstatic = true, but there is no manage.py at the top of the repository to run collectstatic with",
				Hint: "run pyship on the directory that holds manage.py, or remove django.collectstatic"}
		}
		if found, maybe := readInstalls(fsys, proj, res).has("django"); !found && maybe == "" {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("django.collectstatic = true, but none of the dependency inputs installs Django (%s)", inputsOf(res)),
				Hint: "add django to the dependencies, or remove django.collectstatic"}
		}
		collect.Source, collect.Reason = key, "django.collectstatic = true in "+cfg.File
	}
	var staticFile string
	if res.django != nil {
		file, line, value, err := findStaticRoot(fsys, res.django.settings)
		if err != nil {
			return err
		}
		staticFile = file
		if file != "" && forced == nil {
			collect.Source = fmt.Sprintf("%s:%d", file, line)
			collect.Reason = "the settings set STATIC_ROOT = " + value
		}
		if file != "" && strings.HasPrefix(strings.Trim(value, `"'`), "/") {
			res.warnf("%s:%d: STATIC_ROOT is an absolute path; pyship keeps only what collectstatic writes inside the project, so make it relative to BASE_DIR", file, line)
		}
	}
	switch {
	case forced == nil && staticFile == "":
		return nil
	case forced != nil && res.django == nil:
		res.warnf("%s: manage.py names no settings module pyship can read, so pyship cannot check that the settings set STATIC_ROOT; collectstatic fails without it", collect.Source)
	case forced != nil && staticFile == "":
		res.warnf("%s: pyship finds no STATIC_ROOT in the settings (%s); collectstatic fails unless they set it in a way pyship cannot see", collect.Source, res.django.settings)
	}
	if atStart := collectstaticAtStart(res); atStart {
		res.warnf("%s: the start command runs collectstatic too; pyship already runs it at build time, and the app's user cannot write to /app", res.Start.Source)
	}
	res.BuildSteps = append(res.BuildSteps, collect)
	return nil
}

// collectstaticAtStart reports whether the start command runs manage.py collectstatic.
func collectstaticAtStart(res *Result) bool {
	for _, words := range startCommands(res.Start.Command) {
		name, args := programOf(words)
		if (name == "python" || name == "python3") && len(args) > 1 && path.Base(unquote(args[0])) == "manage.py" && unquote(args[1]) == "collectstatic" {
			return true
		}
	}
	return false
}

// findStaticRoot looks for STATIC_ROOT in the settings module (a file, or every file of a
// settings package).
func findStaticRoot(fsys fs.FS, settings string) (string, int, string, error) {
	base := strings.ReplaceAll(settings, ".", "/")
	var files []string
	if exists(fsys, base+".py") {
		files = append(files, base+".py")
	}
	// A module of a settings package usually imports the package's base module.
	for dir := base; dir != "." && dir != ""; dir = path.Dir(dir) {
		matches, _ := fs.Glob(fsys, dir+"/*.py")
		files = append(files, matches...)
		if exists(fsys, dir+"/__init__.py") || len(matches) > 0 {
			break
		}
	}
	for _, f := range files {
		data, err := readFile(fsys, f)
		if err != nil {
			return "", 0, "", readError(f, err)
		}
		if m := staticRootRe.FindSubmatchIndex(data); m != nil {
			return f, lineOf(string(data), m[0]), strings.TrimSpace(string(data[m[2]:m[3]])), nil
		}
	}
	return "", 0, "", nil
}
