package detect

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

var staticRootRe = regexp.MustCompile(`(?m)^STATIC_ROOT\s*=\s*(.+)$`)

// buildSteps decides the framework build steps: Django's collectstatic when the settings
// set STATIC_ROOT, whatever gives the start command, and a Flask app's init-db, unless the
// configuration says otherwise. django.collectstatic = true and flask.init-db = true are
// never dropped: when the step cannot run, that is an error that says why.
func buildSteps(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
	if err := djangoSteps(fsys, cfg, proj, res); err != nil {
		return err
	}
	if err := flaskSteps(fsys, cfg, res); err != nil {
		return err
	}
	return scriptSteps(cfg, proj, res)
}

// initDBScriptRe are names of a project's script that makes its database.
var initDBScriptRe = regexp.MustCompile(`^(?:init|create|setup)[-_]?(?:db|database)$`)

// entryPointRe is a script's entry point: module:function.
var entryPointRe = regexp.MustCompile(`^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*:\s*([A-Za-z_]\w*)\s*$`)

// scriptSteps runs the project's script that makes its database at build time, as its
// README would have a user run it before the first start ([project.scripts] or
// [tool.poetry.scripts] init_db = "blog:init_db", as Quart's tutorial has it): the image
// starts with its database, which the app may write when it is SQLite (see plan.Writable).
// It calls the entry point with the image's environment, so that it imports the module the
// app serves. [scripts] init-db = false turns it off.
func scriptSteps(cfg *Config, proj *project, res *Result) error {
	forced := cfg != nil && cfg.Scripts.InitDB != nil
	if forced && !*cfg.Scripts.InitDB {
		return nil
	}
	var names []string
	for name, target := range proj.scripts {
		if initDBScriptRe.MatchString(strings.ToLower(name)) && entryPointRe.MatchString(target) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, st := range res.BuildSteps {
		if st.Data != "" {
			names = nil // the Flask app's init-db makes the database already
		}
	}
	if len(names) == 0 {
		if forced {
			file, line := ParseSource(cfg.Source("scripts.init-db"))
			return &Error{File: file, Line: line, Msg: "scripts.init-db = true, but the project declares no script that makes a database (init_db, init-db, create_db ... in [project.scripts] or [tool.poetry.scripts])",
				Hint: `declare one, like init_db = "app:init_db", or remove scripts.init-db`}
		}
		return nil
	}
	name := names[0]
	m := entryPointRe.FindStringSubmatch(proj.scripts[name])
	module, function := m[1], m[2]
	step := BuildStep{
		Name:    name,
		Command: []string{"python", "-c", fmt.Sprintf("import sys; from %s import %s; sys.exit(%s())", module, function, function)},
		Source:  scriptSource(proj, name),
		Reason:  fmt.Sprintf("the project's script %s (%s:%s) makes its database, to run once before the app serves: the image starts with it; an SQLite database is the app's to write ([scripts] init-db = false in pyship.toml turns it off)", name, module, function),
	}
	if forced {
		step.Source, step.Reason = cfg.Source("scripts.init-db"), "scripts.init-db = true in "+cfg.File
	}
	res.BuildSteps = append(res.BuildSteps, step)
	return nil
}

// scriptSource is the file and line that declare a project's script.
func scriptSource(proj *project, name string) string {
	re := regexp.MustCompile(`(?m)^[ \t]*["']?` + regexp.QuoteMeta(name) + `["']?[ \t]*=`)
	if m := re.FindIndex(proj.pyproject); m != nil {
		return fmt.Sprintf("pyproject.toml:%d", lineOf(string(proj.pyproject), m[0]))
	}
	return "pyproject.toml"
}

// initDBRe finds a Flask CLI command that makes the app's database, as Flask's tutorial
// writes it: @click.command("init-db"), registered with app.cli.add_command, or
// @app.cli.command("init-db").
var initDBRe = regexp.MustCompile(`(?m)^@(?:click|\w+\.cli)\.command\(\s*["'](init[-_]?db)["']`)

// flaskSteps runs a Flask app's init-db command at build time, as its README would have a
// user do before the first start: the image then starts with the database, in Flask's
// instance folder, which the app's user owns. [flask] init-db = false turns it off.
func flaskSteps(fsys fs.FS, cfg *Config, res *Result) error {
	forced := cfg != nil && cfg.Flask.InitDB != nil
	if forced && !*cfg.Flask.InitDB {
		return nil
	}
	if res.Framework != "flask" || res.app == nil {
		if forced {
			file, line := ParseSource(cfg.Source("flask.init-db"))
			return &Error{File: file, Line: line, Msg: "flask.init-db = true, but pyship finds no Flask app to run it with",
				Hint: "remove flask.init-db: pyship runs init-db with the Flask app it finds as the start command"}
		}
		return nil
	}
	dir := path.Dir(res.app.file)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return readError(dir, err)
	}
	for i, e := range entries {
		if i == maxInitDBFiles {
			break
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".py") {
			continue
		}
		file := path.Join(dir, e.Name())
		data, err := readSource(fsys, file)
		if err != nil {
			return readError(file, err)
		}
		m := initDBRe.FindStringSubmatchIndex(string(data))
		if m == nil {
			continue
		}
		name := string(data[m[2]:m[3]])
		// FLASK_APP names the module: every Flask since 1.0 finds the app or its factory
		// (create_app) in it.
		module := res.app.module
		step := BuildStep{
			Name:    name,
			Command: []string{"env", "FLASK_APP=" + module, "python", "-m", "flask", name},
			Source:  fmt.Sprintf("%s:%d", file, lineOf(string(data), m[0])),
			Reason:  fmt.Sprintf("the app defines the command %s, to run once before it serves: the image starts with its database, in Flask's instance folder, which the app's user owns ([flask] init-db = false in pyship.toml turns it off)", name),
			Data:    path.Join(res.app.root, "instance"),
		}
		if forced {
			step.Source, step.Reason = cfg.Source("flask.init-db"), "flask.init-db = true in "+cfg.File
		}
		res.BuildSteps = append(res.BuildSteps, step)
		return nil
	}
	if forced {
		file, line := ParseSource(cfg.Source("flask.init-db"))
		return &Error{File: file, Line: line, Msg: fmt.Sprintf("flask.init-db = true, but pyship finds no init-db command beside the Flask app (%s)", res.app.file),
			Hint: `define it as the Flask tutorial does (@click.command("init-db") registered with app.cli.add_command), or remove flask.init-db`}
	}
	return nil
}

// maxInitDBFiles bounds the files read beside the app when looking for init-db.
const maxInitDBFiles = 200

// djangoSteps decides Django's collectstatic.
func djangoSteps(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
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
		file, line, value, err := findSetting(fsys, res.django.settings, staticRootRe)
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

// findSetting looks for a setting in the settings module (a file, or every file of a
// settings package): the file and line of re's match and its first group, if it has one.
func findSetting(fsys fs.FS, settings string, re *regexp.Regexp) (string, int, string, error) {
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
		if m := re.FindSubmatchIndex(data); m != nil {
			value := ""
			if len(m) > 3 {
				value = strings.TrimSpace(string(data[m[2]:m[3]]))
			}
			return f, lineOf(string(data), m[0]), value, nil
		}
	}
	return "", 0, "", nil
}
