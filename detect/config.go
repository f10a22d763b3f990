package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ConfigFile is pyship's own configuration file. The same keys can live under
// [tool.pyship] in pyproject.toml; pyship.toml wins when both exist.
const ConfigFile = "pyship.toml"

// Config is what the user wrote in pyship.toml or [tool.pyship]. Every field is optional;
// a set field overrides detection.
type Config struct {
	// Python is the Python minor version, like "3.12".
	Python string `toml:"python" json:"python,omitempty"`
	// Base replaces the whole base image reference.
	Base string `toml:"base" json:"base,omitempty"`
	// Start is the start command: a string runs under /bin/sh -c (so $PORT expands), a list
	// runs as it is.
	Start Command `toml:"start" json:"start,omitempty"`
	// Port is the port the app listens on; it is passed as $PORT and exposed.
	Port int `toml:"port" json:"port,omitempty"`
	// User is "uid[:gid]" to run as, instead of 65532:65532.
	User string `toml:"user" json:"user,omitempty"`
	// Env is added to the image's environment.
	Env map[string]string `toml:"env" json:"env,omitempty"`
	// Labels are added to the image config.
	Labels map[string]string `toml:"labels" json:"labels,omitempty"`
	// Include brings back paths the built-in rules or ignore files leave out; Exclude
	// leaves out more. Both are .dockerignore patterns.
	Include []string `toml:"include" json:"include,omitempty"`
	Exclude []string `toml:"exclude" json:"exclude,omitempty"`
	Smoke   Smoke    `toml:"smoke" json:"smoke,omitempty"`
	Django  Django   `toml:"django" json:"django,omitempty"`
	Flask   Flask    `toml:"flask" json:"flask,omitempty"`
	Scripts Scripts  `toml:"scripts" json:"scripts,omitempty"`
	// Resolve is "commit" (the default: versions the requirements leave open are resolved
	// as of the commit's time) or "latest".
	Resolve string `toml:"resolve" json:"resolve,omitempty"`
	// Installer is the tool that installs the dependencies: "uv" (the default) or "pip".
	Installer string `toml:"installer" json:"installer,omitempty"`
	// Apt are Debian packages installed into the image (from the base's own apt), like
	// "graphviz" or "libmagic1"; source builds of the dependencies see them too.
	Apt []string `toml:"apt" json:"apt,omitempty"`
	// Matrix configures `pyship plan --matrix` when this is the configuration at its root.
	Matrix *Matrix `toml:"matrix" json:"matrix,omitempty"`

	// File is where the configuration came from: "pyship.toml" or "pyproject.toml".
	File string `toml:"-" json:"file,omitempty"`
	// keys maps a key as Line takes it ("port", "smoke.path") to the full key in doc, the
	// document: a key's line is looked up when asked for, not for every key of a document
	// that may hold thousands.
	keys map[string]toml.Key
	doc  string
}

// Smoke configures the smoke test.
type Smoke struct {
	Path    string            `toml:"path" json:"path,omitempty"`
	Status  int               `toml:"status" json:"status,omitempty"`
	Body    string            `toml:"body" json:"body,omitempty"`
	Headers map[string]string `toml:"headers" json:"headers,omitempty"`
	Timeout Duration          `toml:"timeout" json:"timeout,omitempty"`
}

// Django configures Django's build steps.
type Django struct {
	// Collectstatic runs "manage.py collectstatic" at build time; default: when
	// STATIC_ROOT is set.
	Collectstatic *bool `toml:"collectstatic" json:"collectstatic,omitempty"`
	// Migrate runs "manage.py migrate" each time the app starts, before the server;
	// default: when pyship derives the start command from manage.py, or the Procfile's
	// release process runs it, and the settings configure a database.
	Migrate *bool `toml:"migrate" json:"migrate,omitempty"`
}

// Flask configures Flask's build steps.
type Flask struct {
	// InitDB runs the app's init-db command at build time; default: when the app defines
	// one.
	InitDB *bool `toml:"init-db" json:"init-db,omitempty"`
}

// Scripts configures the project's scripts that pyship runs at build time.
type Scripts struct {
	// InitDB runs the project's script that makes its database ([project.scripts] or
	// [tool.poetry.scripts] init_db, init-db, create_db, ...) at build time; default: when
	// the project declares one.
	InitDB *bool `toml:"init-db" json:"init-db,omitempty"`
}

// Command is a start command written as a string or as a list of strings.
type Command []string

// UnmarshalTOML implements toml.Unmarshaler.
func (c *Command) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return errors.New("start is empty")
		}
		*c = Command(shellCommand(v))
	case []any:
		if len(v) == 0 {
			return errors.New("start is an empty list")
		}
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("start: %s is not a string", excerpt(fmt.Sprint(e)))
			}
			*c = append(*c, s)
		}
	default:
		return fmt.Errorf("start must be a string or a list of strings, not %T", v)
	}
	return nil
}

// Duration is a time.Duration written like "30s".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%s is not a duration like \"30s\"", excerpt(string(b)))
	}
	if v <= 0 {
		return fmt.Errorf("%s must be positive", excerpt(string(b)))
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// configKeys are the valid keys of each table, for "did you mean" hints. Env and labels
// take any key.
var configKeys = map[string][]string{
	"":        {"python", "base", "start", "port", "user", "env", "labels", "include", "exclude", "smoke", "django", "flask", "scripts", "resolve", "apt", "matrix"},
	"smoke":   {"path", "status", "body", "headers", "timeout"},
	"django":  {"collectstatic", "migrate"},
	"flask":   {"init-db"},
	"scripts": {"init-db"},
	"matrix":  {"include", "exclude"},
}

// Line returns the line of a key ("port", "smoke.path") in the configuration, or 0.
func (c *Config) Line(key string) int {
	k, ok := c.keys[key]
	if !ok {
		return 0
	}
	return keyLine(c.doc, k)
}

// Source returns "file:line" for a key.
func (c *Config) Source(key string) string {
	if n := c.Line(key); n > 0 {
		return fmt.Sprintf("%s:%d", c.File, n)
	}
	return c.File
}

// loadConfig reads pyship.toml, else [tool.pyship] in pyproject.toml. It returns nil when
// neither exists.
func loadConfig(fsys fs.FS, pyproject []byte) (*Config, error) {
	data, err := readOptional(fsys, ConfigFile)
	switch {
	case err != nil:
		return nil, err
	case data != nil:
		return parseConfig(ConfigFile, data, nil)
	case pyproject != nil:
		return parseConfig("pyproject.toml", pyproject, []string{"tool", "pyship"})
	}
	return nil, nil
}

// parseConfig decodes a configuration from data; prefix is the table that holds it.
func parseConfig(file string, data []byte, prefix []string) (*Config, error) {
	var (
		cfg Config
		md  toml.MetaData
		err error
	)
	if len(prefix) == 0 {
		md, err = decodeTOML(file, data, &cfg)
	} else {
		var doc struct {
			Tool struct {
				Pyship *Config `toml:"pyship"`
			} `toml:"tool"`
		}
		md, err = decodeTOML(file, data, &doc)
		if err == nil && doc.Tool.Pyship == nil {
			return nil, nil
		}
		if doc.Tool.Pyship != nil {
			cfg = *doc.Tool.Pyship
		}
	}
	if err != nil {
		return nil, err
	}
	cfg.File = file
	cfg.keys = map[string]toml.Key{}
	cfg.doc = string(data)
	for _, k := range md.Keys() {
		if len(k) <= len(prefix) || !hasPrefix(k, prefix) {
			continue
		}
		cfg.keys[strings.Join(k[len(prefix):], ".")] = k
	}
	for _, k := range md.Undecoded() {
		if !hasPrefix(k, prefix) || len(k) <= len(prefix) {
			continue
		}
		rel := k[len(prefix):]
		table, key := strings.Join(rel[:len(rel)-1], "."), rel[len(rel)-1]
		e := &Error{File: file, Line: keyLine(string(data), k), Msg: "unknown key " + excerpt(strings.Join(rel, "."))}
		if valid, ok := configKeys[table]; ok {
			if near := nearest(key, valid); near != "" {
				e.Hint = fmt.Sprintf("did you mean %q? valid keys here: %s", near, strings.Join(valid, ", "))
			} else {
				e.Hint = "valid keys here: " + strings.Join(valid, ", ")
			}
		}
		return nil, e
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

var userRe = regexp.MustCompile(`^\d+(?::\d+)?$`)

func (c *Config) validate() error {
	bad := func(key, format string, args ...any) error {
		return &Error{File: c.File, Line: c.Line(key), Msg: fmt.Sprintf(format, args...)}
	}
	if c.Python != "" {
		if _, ok := pythonMinor(c.Python); !ok {
			e := bad("python", "python = %s is not a CPython version", excerpt(c.Python))
			e.(*Error).Hint = `write a version like "3.12"`
			return e
		}
	}
	if c.Port != 0 && (c.Port < 1 || c.Port > 65535) {
		return bad("port", "port = %d is not a TCP port (1-65535)", c.Port)
	}
	if c.User != "" && !userRe.MatchString(c.User) {
		e := bad("user", "user = %s is not numeric", excerpt(c.User))
		e.(*Error).Hint = `write "uid" or "uid:gid", like "10001:10001"; names cannot be checked by "run as non-root" policies`
		return e
	}
	if c.Smoke.Path != "" && !strings.HasPrefix(c.Smoke.Path, "/") {
		return bad("smoke.path", "smoke.path = %s must start with /", excerpt(c.Smoke.Path))
	}
	if c.Smoke.Status != 0 && (c.Smoke.Status < 100 || c.Smoke.Status > 599) {
		return bad("smoke.status", "smoke.status = %d is not an HTTP status", c.Smoke.Status)
	}
	if c.Resolve != "" && c.Resolve != "commit" && c.Resolve != "latest" {
		e := bad("resolve", "resolve = %s is neither \"commit\" nor \"latest\"", excerpt(c.Resolve))
		e.(*Error).Hint = `"commit" resolves open versions as of the commit's time (the default); "latest" takes the newest`
		return e
	}
	if c.Installer != "" && c.Installer != "uv" && c.Installer != "pip" {
		e := bad("installer", "installer = %s is neither \"uv\" nor \"pip\"", excerpt(c.Installer))
		e.(*Error).Hint = `"uv" installs fast (the default); "pip" installs with pip, for a requirements file only pip reads`
		return e
	}
	for _, p := range c.Apt {
		if !debianPackageRe.MatchString(p) {
			e := bad("apt", "apt = [... %s ...] is not a Debian package name", excerpt(p))
			e.(*Error).Hint = `write package names as apt-get takes them, like "libpq5" or "graphviz"`
			return e
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "= \t") {
			return bad("env", "env key %s is not a variable name", excerpt(k))
		}
	}
	return nil
}

// tomlError turns a TOML decoding error into an *Error with the file, line and column.
func tomlError(file string, data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line, col := pe.Position.Line, pe.Position.Col
		if start := pe.Position.Start; start > 0 && start <= len(data) {
			// Count from the byte offset: an error at a line's end (an unclosed bracket)
			// then names the line it is on, not the next one.
			line = bytes.Count(data[:start], []byte("\n")) + 1
			col = start - bytes.LastIndexByte(data[:start], '\n')
		}
		msg := clip(pe.Message, 200)
		if col > 0 {
			msg = fmt.Sprintf("column %d: %s", col, msg)
		}
		hint := "fix the TOML syntax at that place"
		if pe.Usage != "" {
			hint = strings.TrimSpace(pe.Usage)
		}
		return &Error{File: file, Line: line, Msg: msg, Hint: hint}
	}
	return &Error{File: file, Msg: clip(err.Error(), 300), Hint: "check the types of the values: numbers unquoted, strings quoted"}
}

func hasPrefix(k toml.Key, prefix []string) bool {
	if len(k) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		if k[i] != p {
			return false
		}
	}
	return true
}

// keyLine finds the line of key k in a TOML document: its table header, or its "key ="
// line inside the table that holds it. 0 when it cannot be found.
func keyLine(doc string, k toml.Key) int {
	parent, last := strings.Join(k[:len(k)-1], "."), k[len(k)-1]
	table := ""
	header := regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$`)
	assign := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(last) + `["']?\s*=`)
	for i, line := range strings.Split(doc, "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			table = strings.ReplaceAll(strings.ReplaceAll(m[1], `"`, ""), " ", "")
			if table == strings.Join(k, ".") {
				return i + 1
			}
			continue
		}
		if table == parent && assign.MatchString(line) {
			return i + 1
		}
	}
	// Dotted or inline forms: settle for the first line that assigns the key.
	for i, line := range strings.Split(doc, "\n") {
		if assign.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// nearest returns the candidate closest to s by edit distance, if it is close enough to be
// a likely typo.
func nearest(s string, candidates []string) string {
	best, bestDist := "", len(s)/2+2
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
