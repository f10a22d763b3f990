package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

func runPlan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	var c common
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON on stdout")
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	p, _, _, err := detectAndPlan(ctx, path, c, c.logger())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(p)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tVALUE\tFROM\tWHY")
	for _, d := range p.Decisions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.What, d.Value, d.Source, d.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range p.Dependencies.Steps {
		fmt.Printf("install (%s): %s\n", st.Kind, strings.Join(st.Args, " "))
	}
	for _, st := range p.BuildSteps {
		fmt.Printf("build step (%s): %s\n", st.Name, strings.Join(st.Command, " "))
	}
	for _, w := range p.Warnings {
		fmt.Printf("warning: %s\n", w)
	}
	fmt.Printf("image: cmd %s, user %s, port %s, workdir %s\n", strings.Join(p.Config.Cmd, " "), p.Config.User, strings.Join(p.Config.ExposedPorts, ","), p.Config.WorkingDir)
	return nil
}
