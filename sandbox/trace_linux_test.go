//go:build e2e

package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTraceRecordsThePathsLookedUp: a traced program's reads, stats and listings below
// Trace.Under are recorded, relative ones made absolute, its children's too, and
// nothing it did not name; a rename's source is marked, and a symbolic link it makes
// leaves the trace incomplete.
func TestTraceRecordsThePathsLookedUp(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "waiting in NOTIF_RECV where the kernel can", true: "waiting in poll"}[poll], func(t *testing.T) {
			traceWaitsInPoll = poll
			defer func() { traceWaitsInPoll = false }()
			testTrace(t)
		})
	}
}

func testTrace(t *testing.T) {
	root := probeRoot(t)
	data := t.TempDir()
	for _, name := range []string{"read.txt", "unread.txt", "sub/listed.txt", "moved.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(data, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) *Trace {
		t.Helper()
		trace := &Trace{Under: "/data"}
		var stderr strings.Builder
		err := Exec(context.Background(), ExecSpec{
			Root: root, Upper: filepath.Join(t.TempDir(), "upper"), Dir: "/data",
			Args: append([]string{probeArg, "look"}, args...), Env: []string{"PATH=/bin"},
			Mounts: []Mount{{Type: "overlay", Source: data, Target: "/data", Scratch: filepath.Join(t.TempDir(), "scratch")}},
			Trace:  trace, Stderr: &stderr,
		})
		if err != nil {
			t.Fatalf("Exec: %v\n%s", err, stderr.String())
		}
		return trace
	}

	trace := run("read:/data/read.txt", "stat:/data/missing", "list:/data/sub", "read:relative.txt",
		"stat:/etc/passwd", "child:/data/child-looked", "rename:/data/moved.txt>/data/new.txt",
		"at:/data/sub>at.txt", "stat:/data/gone/../up.txt", "exchange:/data/x1>/data/x2")
	if why := trace.Incomplete(); why != "" {
		t.Errorf("the trace is incomplete: %s", why)
	}
	paths, named := trace.Paths()
	for _, want := range []string{"/data/read.txt", "/data/missing", "/data/sub", "/data/relative.txt", "/data/child-looked",
		"/data/moved.txt", "/data/new.txt", "/data/sub/at.txt", "/data/gone", "/data/up.txt"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the trace misses %s: %q", want, paths)
		}
	}
	for _, p := range paths {
		if p == "/data/unread.txt" || p == "/data/sub/listed.txt" || p != "/data" && !strings.HasPrefix(p, "/data/") {
			t.Errorf("the trace has %s, which the program never named", p)
		}
	}
	if !slices.Equal(named, []string{"/data/moved.txt", "/data/x1", "/data/x2"}) {
		t.Errorf("renamed sources %q, want [/data/moved.txt /data/x1 /data/x2] (an exchange names both)", named)
	}

	if why := run("symlink:/data/link").Incomplete(); !strings.Contains(why, "symbolic link") {
		t.Errorf("a program that made a symbolic link left a complete trace (%q)", why)
	}
	for _, look := range []string{"read:/proc/self/cwd/read.txt", "read:/proc/self/cwd/../data/read.txt", "list:/proc/self/cwd",
		"stat:/proc/self/fd/0/../data/read.txt", "stat:/dev/stdin/x", "stat:/dev/fd/1/x"} {
		if why := run(look).Incomplete(); !strings.Contains(why, "/proc") && !strings.Contains(why, "/dev") {
			t.Errorf("%s left a complete trace (%q)", look, why)
		}
	}
	if why := run("exec:/data/read.txt").Incomplete(); !strings.Contains(why, "ran a file") {
		t.Errorf("running a file of /data left a complete trace (%q)", why)
	}
	if why := (&Trace{Under: "/data"}).Incomplete(); why == "" {
		t.Error("a trace no program ran under is complete")
	}
}
