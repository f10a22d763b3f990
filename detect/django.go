package detect

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// djangoProject is what manage.py says about a Django project.
type djangoProject struct {
	// settings is the settings module, like "mysite.settings".
	settings string
	// source is manage.py's line that names it.
	source string
	// reason says how the settings module was picked, when manage.py names several.
	reason string
	// variable is true when manage.py sets DJANGO_SETTINGS_MODULE from a variable: the
	// image then sets it, so that every process uses the module pyship picked, unless
	// decided: pyship evaluated the choice as the app makes it in the image.
	variable, decided bool
	// served is true when pyship derived the start command from manage.py.
	served bool
}

var (
	settingsRe = regexp.MustCompile(`DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]`)
	// settingsVarRe finds os.environ.setdefault("DJANGO_SETTINGS_MODULE", name).
	settingsVarRe = regexp.MustCompile(`DJANGO_SETTINGS_MODULE['"]\s*,\s*([A-Za-z_]\w*)\s*\)`)
	// dottedLiteralRe finds a quoted dotted module name.
	dottedLiteralRe = regexp.MustCompile(`['"]([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)['"]`)
	productionRe    = regexp.MustCompile(`(?i)(?:^|[._])(?:prod|production|live|deploy|deployment|release)$`)
)

// ternaryRe is a settings choice written as a conditional expression: "A" if COND else "B".
var ternaryRe = regexp.MustCompile(`^['"]([A-Za-z_][\w.]*)['"]\s+if\s+(.+?)\s+else\s+['"]([A-Za-z_][\w.]*)['"]\s*(?:#.*)?$`)

// envConditionRe are conditions on one environment variable: "N" [not] in os.environ,
// os.environ.get("N"[, d]) or os.getenv("N"[, d]), compared with == or != to a string or
// tested for truth.
var (
	envInRe  = regexp.MustCompile(`^['"](\w+)['"]\s+(not\s+)?in\s+os\.environ$`)
	envGetRe = regexp.MustCompile(`^os\.(?:environ\.get|getenv)\(\s*['"](\w+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)(?:\s*(==|!=)\s*['"]([^'"]*)['"])?$`)
)

// evalEnvCondition evaluates cond as Python would in the image, whose environment is env
// (what pyship.toml's [env] sets; nothing else is set in a plain run). ok is false for a
// condition it cannot read; name is the variable it tests.
func evalEnvCondition(cond string, env map[string]string) (value bool, name string, ok bool) {
	cond = strings.TrimSpace(cond)
	if m := envInRe.FindStringSubmatch(cond); m != nil {
		_, set := env[m[1]]
		return set != (m[2] != ""), m[1], true
	}
	if m := envGetRe.FindStringSubmatch(cond); m != nil {
		v, set := env[m[1]]
		if !set {
			v = m[2]
		}
		switch m[3] {
		case "==":
			return v == m[4], m[1], true
		case "!=":
			return v != m[4], m[1], true
		}
		return v != "", m[1], true
	}
	return false, "", false
}

// findDjango reads manage.py: the settings module it names, directly or through a variable.
func findDjango(fsys fs.FS, cfg *Config, res *Result) (*djangoProject, error) {
	data, err := readOptional(fsys, "manage.py")
	if err != nil || data == nil {
		return nil, err
	}
	src := string(data)
	if m := settingsRe.FindStringSubmatchIndex(src); m != nil {
		return &djangoProject{settings: src[m[2]:m[3]], source: fmt.Sprintf("manage.py:%d", lineOf(src, m[0]))}, nil
	}
	m := settingsVarRe.FindStringSubmatchIndex(src)
	if m == nil {
		res.warnf("manage.py does not set DJANGO_SETTINGS_MODULE; not treated as a Django project")
		return nil, nil
	}
	variable := src[m[2]:m[3]]
	setLine := lineOf(src, m[0])
	// Every module name assigned to the variable: "a.prod" if ... else "a.dev", or one per
	// branch of an if.
	assignRe := regexp.MustCompile(`(?m)^[ \t]*` + regexp.QuoteMeta(variable) + `[ \t]*(?::[^=\n]*)?=[ \t]*([^\n]+)`)
	type option struct {
		module string
		line   int
	}
	var options []option
	seen := map[string]bool{}
	for _, a := range assignRe.FindAllStringSubmatchIndex(src, -1) {
		for _, lit := range dottedLiteralRe.FindAllStringSubmatch(src[a[2]:a[3]], -1) {
			if !seen[lit[1]] {
				seen[lit[1]] = true
				options = append(options, option{lit[1], lineOf(src, a[0])})
			}
		}
	}
	if len(options) == 0 {
		res.warnf("manage.py:%d sets DJANGO_SETTINGS_MODULE from %s, which is assigned no module name pyship can read; not treated as a Django project (set DJANGO_SETTINGS_MODULE in [env] in pyship.toml)", setLine, variable)
		return nil, nil
	}
	names := make([]string, len(options))
	for i, o := range options {
		names[i] = o.module
	}
	all := strings.Join(names, ", ")
	pick := func(o option, why string) *djangoProject {
		return &djangoProject{settings: o.module, source: fmt.Sprintf("manage.py:%d", o.line), variable: true,
			reason: fmt.Sprintf("manage.py:%d sets DJANGO_SETTINGS_MODULE from %s, which is one of %s; %s", setLine, variable, all, why)}
	}
	// A choice by an environment variable is made as the app makes it at run time, in the
	// image's environment: the image does not override the app's own choice.
	var env map[string]string
	if cfg != nil {
		env = cfg.Env
	}
	for _, a := range assignRe.FindAllStringSubmatchIndex(src, -1) {
		m := ternaryRe.FindStringSubmatch(strings.TrimSpace(src[a[2]:a[3]]))
		if m == nil {
			continue
		}
		value, name, ok := evalEnvCondition(m[2], env)
		if !ok {
			continue
		}
		chosen, other := m[1], m[3]
		if !value {
			chosen, other = other, chosen
		}
		how := "is not set"
		_, set := env[name]
		if set {
			how = "is " + strconv.Quote(env[name]) + " ([env] in " + cfg.File + ")"
		}
		// Left to the app when nothing is configured; when [env] makes the choice, the
		// image sets the module, so that every entry point (a wsgi.py that names its own
		// default, say) agrees with it.
		return &djangoProject{settings: chosen, source: fmt.Sprintf("manage.py:%d", lineOf(src, a[0])), variable: true, decided: !set,
			reason: fmt.Sprintf("manage.py:%d picks %s when %s %s, as in the image; %s otherwise (set %s in [env] in pyship.toml, or where the image runs)", lineOf(src, a[0]), chosen, name, how, other, name)}, nil
	}
	for _, o := range options {
		if productionRe.MatchString(o.module) && moduleExists(fsys, o.module) {
			return pick(o, o.module+" looks like the production settings"), nil
		}
	}
	for _, o := range options {
		if moduleExists(fsys, o.module) {
			return pick(o, "none looks like production settings, and "+o.module+" is the first that exists"), nil
		}
	}
	res.warnf("manage.py:%d: none of the settings modules %s exists in the repository; pyship uses %s", setLine, all, options[0].module)
	return pick(options[0], "none exists in the repository; the first is used"), nil
}

// moduleExists reports whether a dotted module is a file or a package in the repository.
func moduleExists(fsys fs.FS, module string) bool {
	base := strings.ReplaceAll(module, ".", "/")
	return exists(fsys, base+".py") || exists(fsys, base+"/__init__.py")
}

// djangoCommand serves a Django project's WSGI (or ASGI) application.
func djangoCommand(fsys fs.FS, gconf *gunicornConf, res *Result) {
	dj := res.django
	pkg, _, _ := strings.Cut(dj.settings, ".")
	res.Framework = "django"
	dj.served = true
	deps := res.Dependencies
	wsgi, asgi := exists(fsys, pkg+"/wsgi.py"), exists(fsys, pkg+"/asgi.py")
	switch {
	case wsgi && deps.Has("gunicorn"):
		cmd, why := gconf.gunicorn(pkg+".wsgi:application", res)
		res.Start = Start{Command: shell(cmd), Source: dj.source,
			Reason: fmt.Sprintf("Django project %s (settings %s) served by gunicorn, a dependency%s", pkg, dj.settings, why)}
	case asgi && deps.Has("uvicorn"):
		res.Start = Start{Command: shell(fmt.Sprintf(`uvicorn %s.asgi:application --host 0.0.0.0 --port "$PORT"`, pkg)), Source: dj.source,
			Reason: fmt.Sprintf("Django project %s (settings %s) served by uvicorn, a dependency", pkg, dj.settings)}
	default:
		res.Start = Start{Command: shell(`python manage.py runserver "0.0.0.0:$PORT" --noreload`), Source: dj.source,
			Reason: fmt.Sprintf("Django project %s (settings %s) without gunicorn", pkg, dj.settings)}
	}
}

// djangoNotes records the settings module pyship picked and makes the image use it. A
// DJANGO_SETTINGS_MODULE set in the configuration's [env] wins over manage.py.
func djangoNotes(cfg *Config, res *Result) {
	dj := res.django
	if dj == nil {
		return
	}
	if v, ok := cfg.envValue("DJANGO_SETTINGS_MODULE"); ok {
		dj.settings, dj.variable = v, false
		res.Notes = append(res.Notes, Note{What: "django settings", Value: v, Source: cfg.Source("env.DJANGO_SETTINGS_MODULE"), Reason: "DJANGO_SETTINGS_MODULE is set in [env] in " + cfg.File})
		return
	}
	if !dj.variable {
		return
	}
	res.Notes = append(res.Notes, Note{What: "django settings", Value: dj.settings, Source: dj.source, Reason: dj.reason})
	if !dj.decided {
		// manage.py chooses in a way pyship cannot follow: the image uses the module
		// pyship picked, so the app, its build steps and the plan agree.
		res.Start.Env = append(res.Start.Env, "DJANGO_SETTINGS_MODULE="+dj.settings)
	}
}

// envValue returns a variable the configuration's [env] sets.
func (c *Config) envValue(name string) (string, bool) {
	if c == nil {
		return "", false
	}
	v, ok := c.Env[name]
	return v, ok
}

var (
	// databasesRe finds the settings' DATABASES: an assignment, or a change to one.
	databasesRe = regexp.MustCompile(`(?m)^[ \t]*DATABASES\b(.*)$`)
	// noDatabasesRe is an assignment of none: DATABASES = {}.
	noDatabasesRe = regexp.MustCompile(`^=\s*(?:\{\s*\}|dict\(\s*\))\s*(?:#.*)?$`)
	// sqliteRe finds SQLite in settings: Django's sqlite3 engine, or an sqlite:// URL.
	sqliteRe = regexp.MustCompile(`(?i)\bsqlite`)
	// migrateCommandRe finds manage.py migrate in a command line.
	migrateCommandRe = regexp.MustCompile(`\bmanage\.py["']?\s+["']?migrate\b`)
)

// migrateCommand is what runs before the server when pyship puts migrate there itself.
const migrateCommand = "python manage.py migrate --noinput"

// djangoMigrate puts manage.py migrate in front of the server, so that the app starts with
// its tables made in its SQLite database: what Railpack does with a Django project, and
// what Heroku's release phase does with a Procfile's "release: python manage.py migrate"
// (an image has no release phase, so it runs at every start; migrate does nothing when the
// tables are up to date). It applies when pyship derived the start command from manage.py
// or the Procfile's release process runs migrate, and the settings configure SQLite: a
// database server's tables are for a release step where the app is deployed (an image may
// start where the server is not up), and without DATABASES Django has no database.
// [django] migrate = true puts it in front of any start command; false never.
func djangoMigrate(fsys fs.FS, cfg *Config, res *Result) error {
	var forced *bool
	if cfg != nil {
		forced = cfg.Django.Migrate
	}
	if forced != nil && !*forced {
		return nil
	}
	dj := res.django
	if forced != nil && dj == nil {
		file, line := ParseSource(cfg.Source("django.migrate"))
		return &Error{File: file, Line: line, Msg: "django.migrate = true, but pyship finds no Django project: no manage.py that sets DJANGO_SETTINGS_MODULE at the top of the repository",
			Hint: "run pyship on the directory that holds manage.py, or remove django.migrate"}
	}
	if dj == nil {
		return nil
	}
	migrate, source, reason := migrateCommand, "", ""
	switch {
	case forced != nil:
		source, reason = cfg.Source("django.migrate"), "django.migrate = true in "+cfg.File
	case res.release != nil && migrateCommandRe.MatchString(res.release.line) && splitShell(res.release.line).ok:
		migrate, source = res.release.line, res.release.source
		reason = "the release process runs migrate before each release; an image has no release phase, so it runs before the server"
	case dj.served:
		source = dj.source
		reason = "pyship serves the Django project, and runs migrate first, as Railpack does, so that the app starts with its tables"
	default:
		return nil
	}
	if forced == nil {
		file, line, value, err := findSetting(fsys, dj.settings, databasesRe)
		if err != nil {
			return err
		}
		if file == "" || noDatabasesRe.MatchString(value) {
			return nil
		}
		data, err := readFile(fsys, file)
		if err != nil {
			return readError(file, err)
		}
		if !sqliteRe.Match(data) {
			// A database server's tables are its operator's to migrate, in a release step:
			// the image cannot reach it when it is built, and may run where it is not up.
			res.Notes = append(res.Notes, Note{What: "django migrate", Value: "not run", Source: fmt.Sprintf("%s:%d", file, line),
				Reason: "the settings configure a database server, not SQLite: run manage.py migrate where you deploy, or set [django] migrate = true in pyship.toml to run it at every start"})
			return nil
		}
		reason += fmt.Sprintf("; the settings configure SQLite (%s:%d), which only the image can make", file, line)
	}
	start, ok := startLine(res.Start.Command)
	if !ok {
		res.warnf("%s: pyship cannot put manage.py migrate in front of the start command, a shell line it cannot read; run it there yourself ([django] migrate = false in pyship.toml silences this)", res.Start.Source)
		return nil
	}
	if migrateCommandRe.MatchString(start) {
		return nil // the start command runs it already
	}
	res.Start.Command = shellCommand(migrate + " && " + start)
	if res.release != nil && source == res.release.source {
		res.release = nil // it runs
	}
	res.Notes = append(res.Notes, Note{What: "django migrate", Value: "at start: " + migrate, Source: source,
		Reason: reason + "; a failed migrate stops the start ([django] migrate = false in pyship.toml turns it off)"})
	return nil
}

// startLine returns the start command as one shell line: a list of simple commands that
// may be prefixed with "CMD && ". ok is false for anything else.
func startLine(argv []string) (string, bool) {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2], splitShell(argv[2]).ok
	}
	words := make([]string, len(argv))
	for i, w := range argv {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " "), len(argv) > 0
}

// shellQuote quotes a word for /bin/sh when it needs it.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,+@%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
