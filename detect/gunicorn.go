package detect

import (
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// GunicornConf is the file gunicorn reads from its working directory when no -c is given.
const GunicornConf = "gunicorn.conf.py"

// gunicornConf is what gunicorn.conf.py sets that the start command depends on.
type gunicornConf struct {
	src string
	// wsgiApp is the application it names (wsgi_app = "module:app"), and its line.
	wsgiApp  string
	wsgiLine int
	// bind is the value bind is given, as written, and its line (0 when it sets none).
	bind     string
	bindLine int
}

var (
	gunicornAppRe  = regexp.MustCompile(`(?m)^wsgi_app[ \t]*=[ \t]*['"]([^'"\n]+)['"]`)
	gunicornBindRe = regexp.MustCompile(`(?m)^bind[ \t]*=[ \t]*([^\n#]+)`)
	// bindLiteralRe is a bind that is one literal address: "0.0.0.0:8000" or ["0.0.0.0:8000"].
	bindLiteralRe = regexp.MustCompile(`^\[?[ \t]*['"]([^'"]*)['"][ \t]*,?[ \t]*\]?$`)
)

// readGunicornConf reads gunicorn.conf.py, nil when there is none.
func readGunicornConf(fsys fs.FS) (*gunicornConf, error) {
	data, err := readOptional(fsys, GunicornConf)
	if err != nil || data == nil {
		return nil, err
	}
	g := &gunicornConf{src: string(data)}
	if m := gunicornAppRe.FindStringSubmatchIndex(g.src); m != nil {
		g.wsgiApp, g.wsgiLine = g.src[m[2]:m[3]], lineOf(g.src, m[0])
	}
	if m := gunicornBindRe.FindStringSubmatchIndex(g.src); m != nil {
		g.bind, g.bindLine = strings.TrimSpace(g.src[m[2]:m[3]]), lineOf(g.src, m[0])
	}
	return g, nil
}

// command serves the application gunicorn.conf.py names.
func (g *gunicornConf) command(res *Result) {
	cmd, why := g.gunicorn("", res)
	res.Start = Start{Command: shell(cmd), Source: fmt.Sprintf("%s:%d", GunicornConf, g.wsgiLine),
		Reason: fmt.Sprintf("%s sets wsgi_app = %q; gunicorn reads the file from the working directory%s", GunicornConf, g.wsgiApp, why)}
}

// gunicorn writes a gunicorn command line for target ("" when the configuration names
// it), and says what the configuration changed. The app must listen where the image says:
// on $PORT, or on the port a literal bind in the configuration fixes (which the image then
// exposes).
func (g *gunicornConf) gunicorn(target string, res *Result) (string, string) {
	cmd := "gunicorn"
	if target != "" {
		cmd += " " + target
	}
	bindPort := ` --bind "0.0.0.0:$PORT"`
	if g == nil {
		return cmd + bindPort, ""
	}
	if g.bindLine == 0 {
		return cmd + bindPort, "; gunicorn also reads " + GunicornConf
	}
	source := fmt.Sprintf("%s:%d", GunicornConf, g.bindLine)
	port, all, literal := g.literalBind()
	switch {
	case literal && all:
		res.Port = Port{Number: port, Source: source, HardCoded: true}
		if port != DefaultPort {
			res.warnf("%s binds port %d and ignores $PORT; the image exposes %d", source, port, port)
		}
		return cmd, fmt.Sprintf("; %s binds %s, whose port the image exposes", source, g.bind)
	case literal:
		res.warnf("%s binds %s, which nothing outside the container can reach; the start command binds 0.0.0.0:$PORT instead", source, excerpt(g.bind))
		return cmd + bindPort, fmt.Sprintf("; --bind replaces the bind of %s, which is not reachable from outside the container", source)
	case readsPortRe.MatchString(g.src) && !loopbackBind(g.bind):
		return cmd, fmt.Sprintf("; %s binds to $PORT", source)
	default:
		res.warnf("%s: pyship cannot tell where bind = %s listens; the start command binds 0.0.0.0:$PORT instead", source, excerpt(g.bind))
		return cmd + bindPort, fmt.Sprintf("; --bind replaces the bind of %s", source)
	}
}

// literalBind reads a bind that is one literal TCP address: its port, and whether it
// listens on every interface.
func (g *gunicornConf) literalBind() (port int, all, ok bool) {
	m := bindLiteralRe.FindStringSubmatch(g.bind)
	if m == nil || strings.HasPrefix(m[1], "unix:") || strings.HasPrefix(m[1], "fd://") {
		return 0, false, m != nil
	}
	host, p, err := net.SplitHostPort(m[1])
	if err != nil {
		return 0, false, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, false, true
	}
	return n, host == "0.0.0.0" || host == "" || host == "::", true
}

func loopbackBind(bind string) bool {
	return strings.Contains(bind, "127.0.0.1") || strings.Contains(bind, "localhost") || strings.Contains(bind, "[::1]") || strings.Contains(bind, "unix:")
}

// portOfCommand applies a literal bind of gunicorn.conf.py to a start command the user
// wrote: gunicorn run without --bind or -c listens where the file says.
func (g *gunicornConf) portOfCommand(res *Result) {
	if g == nil || g.bindLine == 0 || res.Port.HardCoded {
		return
	}
	for _, words := range startCommands(res.Start.Command) {
		name, args := programOf(words)
		if name != "gunicorn" {
			continue
		}
		for _, a := range args {
			a = unquote(a)
			if a == "-b" || a == "-c" || strings.HasPrefix(a, "--bind") || strings.HasPrefix(a, "--config") || strings.HasPrefix(a, "-b") || strings.HasPrefix(a, "-c") {
				return
			}
		}
		if port, all, ok := g.literalBind(); ok && all {
			source := fmt.Sprintf("%s:%d", GunicornConf, g.bindLine)
			res.Port = Port{Number: port, Source: source, HardCoded: true}
			if port != DefaultPort {
				res.warnf("%s binds port %d and ignores $PORT; the image exposes %d", source, port, port)
			}
		}
		return
	}
}

// startCommands lists the simple commands a start command runs, each as its words: the
// commands of a /bin/sh -c list, or the argv itself. nil when the shell line is more than
// a list of simple commands.
func startCommands(argv []string) [][]string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		l := splitShell(argv[2])
		if !l.ok {
			return nil
		}
		return l.commands
	}
	if len(argv) == 0 {
		return nil
	}
	return [][]string{argv}
}

// programOf returns the program a simple command runs (after exec, env and variable
// assignments) and its arguments, unquoted program name only.
func programOf(words []string) (string, []string) {
	for {
		name, args := commandName(words)
		switch name {
		case "exec", "env":
			for len(args) > 0 && strings.HasPrefix(args[0], "-") {
				args = args[1:]
			}
			words = args
			continue
		}
		return name, args
	}
}
