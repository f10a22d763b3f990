package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/pyship/pyship/sandbox"
)

// runRun builds the repository and keeps its app running in the sandbox, with its output
// on stderr and its port published, until Ctrl-C or until it exits.
func runRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c common
	c.register(fs)
	var rf runFlags
	rf.register(fs)
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	log := c.logger()
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	b, err := build(ctx, path, c, cacheDir, log)
	if err != nil {
		return err
	}
	p, res := b.plan, b.res
	spec, err := rf.runnable(res.Image, cacheDir, p.Smoke.Port)
	if err != nil {
		return err
	}
	spec.Output = os.Stderr
	app, err := sandbox.Boot(context.WithoutCancel(ctx), spec)
	if err != nil {
		return sandboxFailure(err)
	}
	defer app.Stop(rf.grace)
	log.Info("running; press Ctrl-C to stop", "url", fmt.Sprintf("http://127.0.0.1:%d/", app.HostPort()))
	fmt.Printf("http://127.0.0.1:%d/\n", app.HostPort())
	select {
	case <-ctx.Done():
		log.Info("stopping", "grace", rf.grace)
		app.Stop(rf.grace)
		return nil
	case <-app.Done():
		if code := app.ExitCode(); code != 0 {
			return fail(exitTestFailed, fmt.Errorf("the app exited with code %d", code))
		}
		return nil
	}
}
