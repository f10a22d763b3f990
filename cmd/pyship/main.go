// Command pyship turns a Python repository into a reproducible OCI image, with no
// Dockerfile and no Docker daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pyship/pyship/sandbox"
)

// Exit codes, banded by phase so a CI log tells at a glance what failed.
const (
	exitInternal    = 1
	exitUsage       = 2
	exitDetect      = 20
	exitPlan        = 30
	exitBuild       = 50
	exitBase        = 51
	exitInstall     = 52
	exitSandbox     = 53
	exitPublish     = 60
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
  pyship plan [--json] [PATH]     show what a build would do, and why
  pyship test [flags] [PATH]      build, then boot the image in a sandbox and check that it answers
  pyship test --image REF         check an image from a registry or an OCI layout
  pyship run [flags] [PATH]       build, then keep the app running on a loopback port until Ctrl-C
  pyship publish --image REPO[:TAG] [PATH]
                                  build, smoke-test, then push (nothing is pushed if the test fails)
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
	fmt.Fprintf(os.Stderr, "pyship: %v\n", err)
	if inGitHubActions() {
		// The runner reads workflow commands from stderr too; stdout stays for results.
		annotate(os.Stderr, err, dir)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string) error {
	cmd := "build"
	if len(args) > 0 {
		switch args[0] {
		case "build", "plan", "test", "run", "publish", "version", "help":
			cmd, args = args[0], args[1:]
		case "-h", "--help":
			fmt.Fprint(os.Stderr, usage)
			return nil
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
