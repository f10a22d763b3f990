package detect

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// A Pyramid project (the cookiecutter's shape) is started by pserve from a PasteDeploy
// file: [app:main] names the app (use = egg:PKG, the project's paste.app_factory entry
// point), [server:main] the server and where it listens. pserve cannot be told another
// port on its command line, so the port the file fixes is the one the image exposes.

// pasteFiles are the PasteDeploy files pserve is given, in order of preference.
var pasteFiles = []string{"production.ini", "development.ini"}

// iniKey is one key = value of an ini file, with its line.
type iniKey struct {
	name, value string
	line        int
}

// iniSection is one [section] of an ini file.
type iniSection struct {
	name string
	line int
	keys []iniKey
}

func (s *iniSection) get(name string) (iniKey, bool) {
	for _, k := range s.keys {
		if k.name == name {
			return k, true
		}
	}
	return iniKey{}, false
}

// parseINI reads an ini file the way Python's configparser does, as far as pyship needs:
// [sections], key = value (or key: value), whole-line # and ; comments, and indented
// continuation lines, which join the value before them. One pass; what is not understood
// is skipped.
func parseINI(text string) []iniSection {
	var out []iniSection
	var last *iniKey
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
			// configparser ends a value at a blank line only when it is not indented.
			if trimmed == "" {
				last = nil
			}
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last != nil {
				last.value = strings.TrimSpace(last.value + "\n" + trimmed)
			}
			continue
		case strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]"):
			out = append(out, iniSection{name: strings.TrimSpace(trimmed[1 : len(trimmed)-1]), line: i + 1})
			last = nil
			continue
		}
		if len(out) == 0 {
			continue
		}
		sep := strings.IndexAny(trimmed, "=:")
		if sep <= 0 {
			last = nil
			continue
		}
		s := &out[len(out)-1]
		s.keys = append(s.keys, iniKey{name: strings.ToLower(strings.TrimSpace(trimmed[:sep])), value: strings.TrimSpace(trimmed[sep+1:]), line: i + 1})
		last = &s.keys[len(s.keys)-1]
	}
	return out
}

// pyramidCommand serves a Pyramid project with pserve, from production.ini (else
// development.ini, with a warning) when it has the app's [app:main] section and pyramid,
// which installs pserve, is a dependency.
func pyramidCommand(fsys fs.FS, res *Result) (bool, error) {
	for i, file := range pasteFiles {
		data, err := readOptional(fsys, file)
		if err != nil {
			return false, err
		}
		if data == nil {
			continue
		}
		text, err := decodeText(file, data, false)
		if err != nil {
			return false, err
		}
		sections := parseINI(text)
		var app, server *iniSection
		for j := range sections {
			switch s := &sections[j]; s.name {
			case "app:main", "pipeline:main", "composite:main":
				app = s
			case "server:main":
				server = s
			}
		}
		if app == nil {
			continue
		}
		listed := pyramidListed(fsys, res)
		if listed == "" {
			return false, nil
		}
		res.Framework = "pyramid"
		res.Start = Start{Command: []string{"pserve", file}, Source: fmt.Sprintf("%s:%d", file, app.line),
			Reason: fmt.Sprintf("%s configures a PasteDeploy app ([%s]) and pyramid is a dependency (%s): served by pserve, which pyramid installs", file, app.name, listed)}
		if i > 0 {
			res.warnf("%s:%d: pserve runs %s, the development configuration (there is no production.ini); it may turn on debugging and reloading: add a production.ini", file, app.line, file)
		}
		if use, ok := app.get("use"); ok {
			egg, isEgg := strings.CutPrefix(use.value, "egg:")
			egg, _, _ = strings.Cut(egg, "#")
			deps := res.Dependencies
			if isEgg && !deps.Project && len(deps.Local) == 0 && !deps.Has(egg) {
				addTo := deps.Source
				if addTo == "" {
					addTo = "a requirements.txt"
				}
				res.warnf("%s:%d: use = %s loads the app from the installed distribution %s, which no dependency input installs: list . in %s so that the project is installed", file, use.line, clip(use.value, maxExcerpt), clip(egg, maxExcerpt), addTo)
			}
		}
		if server == nil {
			return false, &Error{File: file, Line: app.line, Msg: "has no [server:main] section, which pserve starts the app with",
				Hint: "add a server section:\n[server:main]\nuse = egg:waitress#main\nlisten = *:8080"}
		}
		res.Start.Reason += fmt.Sprintf("; [server:main] at line %d", server.line)
		if use, ok := server.get("use"); ok && strings.HasPrefix(strings.ToLower(use.value), "egg:waitress") {
			res.needs = append(res.needs, need{dist: "waitress", what: "[server:main] uses waitress", source: fmt.Sprintf("%s:%d", file, use.line)})
		}
		return true, pasteServerPort(file, server, res)
	}
	return false, nil
}

// pasteServerPort takes the port from [server:main]: listen (waitress's host:port list)
// or host and port. A server bound to the loopback address only is an error: nothing
// outside the container reaches it.
func pasteServerPort(file string, server *iniSection, res *Result) error {
	var port string
	var line int
	var loopback bool
	if listen, ok := server.get("listen"); ok {
		line = listen.line
		for _, addr := range strings.Fields(listen.value) {
			i := strings.LastIndex(addr, ":")
			if i < 0 {
				continue
			}
			if isLoopback(addr[:i]) {
				port, loopback = addr[i+1:], true
				continue
			}
			port, loopback = addr[i+1:], false
			break
		}
	} else {
		if host, ok := server.get("host"); ok && isLoopback(host.value) {
			loopback, line = true, host.line
		}
		if p, ok := server.get("port"); ok {
			port = p.value
			if line == 0 {
				line = p.line
			}
		}
	}
	if loopback {
		n := "PORT"
		if port != "" {
			n = port
		}
		return &Error{File: file, Line: line, Msg: "the server listens on the loopback address only, which nothing outside the container can reach",
			Hint: fmt.Sprintf("listen on every address: listen = *:%s", clip(n, maxExcerpt))}
	}
	if line == 0 {
		return nil // waitress's default, 0.0.0.0:8080
	}
	source := fmt.Sprintf("%s:%d", file, line)
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		res.warnf("%s: pyship cannot tell the port of %s; the image exposes %d: write listen = *:%d", source, excerpt(port), DefaultPort, DefaultPort)
		return nil
	}
	res.Port = Port{Number: n, Source: source, HardCoded: true}
	if n != DefaultPort {
		res.warnf("%s hard-codes port %d and ignores $PORT; the image exposes %d", source, n, n)
	}
	return nil
}

// isLoopback reports whether a host binds the loopback interface only.
func isLoopback(host string) bool {
	host = strings.Trim(strings.TrimSpace(host), "[]")
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// pyramidListed says where pyramid is a dependency: the dependency input that lists it, or
// the setup.py or setup.cfg line that does; "" when it is none.
func pyramidListed(fsys fs.FS, res *Result) string {
	deps := res.Dependencies
	if deps.Has("pyramid") {
		return deps.Source
	}
	if !deps.Project {
		return ""
	}
	for _, file := range []string{"setup.py", "setup.cfg"} {
		if data, err := readSource(fsys, file); err == nil {
			if loc := setupListsRe(file, "pyramid").FindStringIndex(string(data)); loc != nil {
				return fmt.Sprintf("%s:%d", file, lineOf(string(data), loc[0]))
			}
		}
	}
	return ""
}

// setupListsRe finds a requirement on dist written as text in setup.py (a string literal,
// 'pyramid>=2') or setup.cfg (an indented line of install_requires): setup.py is code,
// but its requirements are usually written out.
func setupListsRe(file, dist string) *regexp.Regexp {
	parts := strings.Split(NormalizeName(dist), "-")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	name := strings.Join(parts, `[-_.]+`)
	if file == "setup.cfg" {
		return regexp.MustCompile(`(?im)^[ \t]+` + name + `[ \t]*(?:\[[^\]\n]*\])?[ \t]*(?:[<>=!~;@][^\n]*)?$`)
	}
	return regexp.MustCompile(`(?i)['"][ \t]*` + name + `[ \t]*(?:\[[^\]'"\n]*\])?[ \t]*(?:[<>=!~;@][^'"\n]*)?['"]`)
}
