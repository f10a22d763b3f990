// Command pyship turns a Python repository into a reproducible OCI image, with no
// Dockerfile and no Docker daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/pyship/pyship/sandbox"
)

// Exit codes, banded by phase so a CI log tells at a glance what failed.
const (
	exitInternal = 1
	exitUsage    = 2
	exitDetect   = 20
	exitPlan     = 30
	exitBuild    = 50
	exitBase     = 51
	exitInstall  = 52
	exitSandbox  = 53
	// exitRebase is a rebase that would change what the image does (another Python, another
	// OS release), or of an image pyship did not build: a rebuild is needed. It sits in the
	// build's band, for the build it stands in for.
	exitRebase  = 54
	exitPublish = 60
	// exitTestFailed is a smoke test that ran and failed.
	exitTestFailed = 70
	// exitVerify is an image without the evidence pyship verify looks for.
	exitVerify      = 71
	exitInterrupted = 130
)

// exitError carries the exit code of the phase that failed, and the project's directory
// when the failure is in the project.
type exitError struct {
	code int
	err  error
	dir  string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error) error { return &exitError{code: code, err: err} }

// inDir records the project directory a failure belongs to.
func inDir(dir string, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		ee.dir = dir
	}
	return err
}

func usagef(format string, args ...any) error {
	return fail(exitUsage, fmt.Errorf(format, args...))
}

const usage = `pyship turns a Python repository into a container image, without a Dockerfile or daemon.

Usage:
  pyship [build] [flags] [PATH]   build the image for the repository at PATH (default .)
  pyship plan [--json | --matrix] [PATH]
                                  show what a build would do, and why; --matrix: one CI job per app under PATH
  pyship test [flags] [PATH]      build, then boot the image in a sandbox and check that it answers
  pyship test --from REF          check an image from a registry or an OCI layout
  pyship run [flags] [PATH]       build, then keep the app running on a loopback port until Ctrl-C
  pyship publish --image REPO[:TAG] [PATH]
                                  build, smoke-test, then push (nothing is pushed if the test fails)
  pyship rebase REF               move an image onto the newest digest of its base, smoke-test it, push it
  pyship sbom REF                 print the bill of materials attached to an image
  pyship verify REF               check that an image carries a passing smoke test, a bill of
                                  materials and provenance for its digest
  pyship version                  print the version

Run "pyship COMMAND --help" for a command's flags.
`

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	sandbox.Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	interrupted := ctx.Err() != nil
	stop()
	if err == nil {
		return
	}
	if errors.Is(err, errHelp) {
		return
	}
	code, dir := exitInternal, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code, dir = ee.code, ee.dir
	}
	if interrupted {
		code = exitInterrupted
		err = errors.New("interrupted")
	}
	printError(os.Stderr, err, dir, inGitHubActions())
	os.Exit(code)
}

// How much of an error pyship prints: pip's output or a registry's page can make an error
// megabytes long. The start says what failed; the end holds the hint.
const (
	maxErrorBytes      = 16 << 10
	maxErrorLines      = 100
	maxAnnotationBytes = 4 << 10
	maxAnnotationLines = 40
)

// printError prints err for a person, bounded, and in GitHub Actions also as an
// annotation. When the message is cut, the whole of it goes to a file, named in the cut.
func printError(w io.Writer, err error, dir string, actions bool) {
	msg := err.Error()
	var once sync.Once
	note := ""
	where := func() string {
		once.Do(func() {
			f, err := os.CreateTemp("", "pyship-error-*.txt")
			if err != nil {
				return
			}
			_, werr := f.WriteString(msg)
			if cerr := f.Close(); werr == nil && cerr == nil {
				note = "; the whole message is in " + f.Name()
			}
		})
		return note
	}
	text := excerpt(msg, maxErrorBytes, maxErrorLines, where)
	fmt.Fprintf(w, "pyship: %s\n", text)
	// The GitHub Action prints the error again after the log's collapsed group, and in the
	// job summary: it names the file to write it to.
	if file := os.Getenv("PYSHIP_ERROR_FILE"); file != "" {
		_ = os.WriteFile(file, []byte(text+"\n"), 0o644)
	}
	if actions {
		// The runner reads workflow commands from stderr too; stdout stays for results.
		annotate(w, err, dir, excerpt(msg, maxAnnotationBytes, maxAnnotationLines, where))
	}
}

// excerpt escapes the control characters of s but newline and tab (they could drive the
// terminal), and, when the result is longer than maxBytes or maxLines, keeps its first
// three quarters and its last quarter, saying how much is left out in between and where
// (note).
func excerpt(s string, maxBytes, maxLines int, note func() string) string {
	s = escapeControl(s)
	if len(s) <= maxBytes && strings.Count(s, "\n") < maxLines {
		return s
	}
	head := s[:runeStart(s, maxBytes*3/4)]
	for i, n := 0, 0; i < len(head); i++ {
		if head[i] == '\n' {
			if n++; n == maxLines*3/4 {
				head = head[:i+1]
				break
			}
		}
	}
	rest := s[len(head):]
	tail := rest[runeStart(rest, max(len(rest)-maxBytes/4, 0)):]
	pos := len(tail)
	for range max(maxLines/4, 1) {
		if pos = strings.LastIndexByte(tail[:pos], '\n'); pos < 0 {
			break
		}
	}
	if pos >= 0 {
		tail = tail[pos+1:]
	}
	sep := ""
	if !strings.HasSuffix(head, "\n") {
		sep = "\n"
	}
	return fmt.Sprintf("%s%s... (%d more bytes%s) ...\n%s", head, sep, len(rest)-len(tail), note(), tail)
}

// runeStart moves i, at most len(s), back to the start of a UTF-8 sequence in s.
func runeStart(s string, i int) int {
	i = min(i, len(s))
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// escapeControl writes control characters and invalid UTF-8 as Go escapes, keeping
// newlines (CRLF becomes LF) and tabs.
func escapeControl(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// A CRLF line end is a line end.
		case unicode.IsControl(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// commands are pyship's commands; anything else first on the command line is a path.
var commands = []string{"build", "plan", "test", "run", "publish", "rebase", "sbom", "verify", "version", "help"}

// unknownCommand refuses a first argument that is no path and reads like a mistyped
// command ("pyship pubish"), rather than building a directory that does not exist.
func unknownCommand(arg string) error {
	if strings.HasPrefix(arg, "-") || strings.ContainsAny(arg, `/\.`) {
		return nil
	}
	if _, err := os.Lstat(arg); err == nil {
		return nil
	}
	for _, c := range commands {
		if editDistance(arg, c) <= 2 {
			return usagef("unknown command %q; did you mean %q?\nhint: run pyship help for the commands; a directory to build must exist", arg, c)
		}
	}
	return nil
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func run(ctx context.Context, args []string) error {
	cmd := "build"
	if len(args) > 0 {
		switch {
		case slices.Contains(commands, args[0]):
			cmd, args = args[0], args[1:]
		case args[0] == "-h" || args[0] == "--help":
			fmt.Fprint(os.Stderr, usage)
			return nil
		default:
			if err := unknownCommand(args[0]); err != nil {
				return err
			}
		}
	}
	switch cmd {
	case "plan":
		return runPlan(ctx, args)
	case "test":
		return runTest(ctx, args)
	case "run":
		return runRun(ctx, args)
	case "publish":
		return runPublish(ctx, args)
	case "rebase":
		return runRebase(ctx, args)
	case "sbom":
		return runSBOM(ctx, args)
	case "verify":
		return runVerify(ctx, args)
	case "version":
		fmt.Println(version)
		return nil
	case "help":
		fmt.Fprint(os.Stderr, usage)
		return nil
	default:
		return runBuild(ctx, args)
	}
}
