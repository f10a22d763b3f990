package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/sandbox"
)

// inGitHubActions reports whether pyship runs as a GitHub Actions step.
func inGitHubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

// annotate prints a GitHub Actions error annotation for err, saying msg (err's message,
// bounded), pointing at the file and line at fault when the error names one. dir is the
// project's directory; annotations name files relative to the workspace, where GitHub
// shows them.
func annotate(w io.Writer, err error, dir, msg string) {
	file, line := "", 0
	var de *detect.Error
	var ie *layers.InstallError
	switch {
	case errors.As(err, &de):
		file, line = de.File, de.Line
	case errors.As(err, &ie) && ie.Where != "":
		file, line = detect.ParseSource(ie.Where)
	}
	var props []string
	if file != "" {
		path := filepath.Join(dir, file)
		if ws := os.Getenv("GITHUB_WORKSPACE"); ws != "" {
			if rel, err := filepath.Rel(ws, path); err == nil && !strings.HasPrefix(rel, "..") {
				path = rel
			}
		}
		props = append(props, "file="+escapeProperty(filepath.ToSlash(path)))
		if line > 0 {
			props = append(props, fmt.Sprintf("line=%d", line))
		}
	}
	props = append(props, "title=pyship")
	fmt.Fprintf(w, "::error %s::%s\n", strings.Join(props, ","), escapeData(msg))
}

// escapeData and escapeProperty encode a workflow command's message and properties.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// summary is what a run of pyship publish reports in a job summary.
type summary struct {
	plan   *plan.Plan
	image  v1.Image
	report *sandbox.Report
	// check is what the smoke test asked, when it ran.
	check sandbox.Check
	refs  []string
	// unpushed is the digest of an image built and tested with push off.
	unpushed string
}

// write renders the summary as Markdown and appends it to file.
func (s summary) write(file string) error {
	var b strings.Builder
	b.WriteString("## pyship\n\n")
	if len(s.refs) > 0 {
		fmt.Fprintf(&b, "Pushed **`%s`**", s.refs[len(s.refs)-1])
		if len(s.refs) > 1 {
			fmt.Fprintf(&b, " as `%s`", strings.Join(s.refs[:len(s.refs)-1], "`, `"))
		}
		b.WriteString(".\n\n")
	}
	if s.unpushed != "" {
		fmt.Fprintf(&b, "Built **`%s`**; not pushed (push is off).\n\n", s.unpushed)
	}
	if r := s.report; r != nil {
		if r.Passed() {
			fmt.Fprintf(&b, "Smoke test: **passed**: GET answered %d after %s; peak memory %.1f MiB, CPU %s.\n\n",
				r.Status, r.FirstResponse.Round(time.Millisecond), float64(r.Usage.MemoryPeak)/(1<<20), r.Usage.CPU.Round(time.Millisecond))
		} else {
			fmt.Fprintf(&b, "Smoke test: **failed** (%s): %s. Nothing was pushed.\n\n", r.Failure, r.Reason)
			if len(r.Output) > 0 {
				fmt.Fprintf(&b, "<details><summary>The app's last %d lines</summary>\n\n```\n%s\n```\n</details>\n\n", len(r.Output), strings.Join(r.Output, "\n"))
			}
		}
	} else {
		b.WriteString("Smoke test: skipped.\n\n")
	}
	if s.plan != nil {
		b.WriteString("| decision | value | from |\n|---|---|---|\n")
		for _, d := range s.plan.Decisions {
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", d.What, strings.ReplaceAll(d.Value, "|", "\\|"), d.Source)
		}
		b.WriteString("\n")
		for _, w := range s.plan.Warnings {
			fmt.Fprintf(&b, "> warning: %s\n", w)
		}
	}
	if s.image != nil {
		if err := imageTable(&b, s.image); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// imageTable lists the image's layers with their compressed sizes and what made them.
func imageTable(b *strings.Builder, img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	var history []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			history = append(history, h.CreatedBy)
		}
	}
	var total int64
	b.WriteString("\n| layer | size | made by |\n|---|---|---|\n")
	for i, l := range ls {
		size, err := l.Size()
		if err != nil {
			return err
		}
		d, err := l.Digest()
		if err != nil {
			return err
		}
		total += size
		made := ""
		if i < len(history) {
			made = history[i]
		}
		if len(made) > 80 {
			made = made[:77] + "..."
		}
		fmt.Fprintf(b, "| `%s` | %.1f MiB | %s |\n", d.Hex[:12], float64(size)/(1<<20), strings.ReplaceAll(made, "|", "\\|"))
	}
	fmt.Fprintf(b, "\nImage size: **%.1f MiB** compressed, %d layers.\n", float64(total)/(1<<20), len(ls))
	return nil
}
