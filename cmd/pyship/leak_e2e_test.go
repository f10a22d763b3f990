//go:build linux && e2e

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"
)

// hostState is what a sandbox could leave behind on the host.
type hostState struct {
	mounts     string
	namespaces []string
}

func readHostState(t *testing.T) hostState {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, l := range links {
		if ns, err := os.Readlink(l); err == nil {
			set[ns] = true
		}
	}
	var namespaces []string
	for ns := range set {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	return hostState{mounts: string(mounts), namespaces: namespaces}
}

// TestNoLeaks runs 50 smoke tests in a row, some of them interrupted with SIGINT or
// SIGTERM, and one whose pyship is killed with SIGKILL, and checks that no process, mount,
// cgroup, network namespace or directory outlives them.
func TestNoLeaks(t *testing.T) {
	fixtures.Testbed(t)
	cache := t.TempDir()
	layoutDir := filepath.Join(t.TempDir(), "oci")
	builtDigest(t, pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, "build", copyFixture(t, "stdlib-port"), "--oci-layout", layoutDir))
	env := append(os.Environ(), "PYSHIP_CACHE_DIR="+cache)
	// A first run unpacks the image, so the loop measures only sandboxes.
	if out, err := exec.Command(pyshipBin, "test", "--from", layoutDir).CombinedOutput(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	before := readHostState(t)

	for i := 0; i < 50; i++ {
		cmd := exec.Command(pyshipBin, "test", "--from", layoutDir, "--grace", "1s")
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var sig os.Signal
		switch i % 10 {
		case 3, 7:
			sig = os.Interrupt
		case 5:
			sig = syscall.SIGTERM
		}
		if sig != nil {
			// Interrupt once the sandbox is up.
			waitFor(t, func() bool { return len(runDirs()) > 0 }, 10*time.Second)
			_ = cmd.Process.Signal(sig)
		}
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		switch {
		case sig != nil && code != exitInterrupted && code != 0:
			t.Errorf("run %d: interrupted, exit code %d (%v)\n%s", i, code, err, stderr.String())
		case sig == nil && code != 0:
			t.Errorf("run %d: exit code %d\n%s", i, code, stderr.String())
		}
		assertNoLeftovers(t)
		if t.Failed() {
			return
		}
	}

	// A pyship killed with SIGKILL cannot clean up; its sandbox dies with it (its init has
	// a parent-death signal) and the next run removes what is left.
	killed := exec.Command(pyshipBin, "test", "--from", layoutDir, "--timeout", "60s", "--path", "/never")
	killed.Env = env
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(runDirs()) > 0 }, 10*time.Second)
	_ = killed.Process.Kill()
	_ = killed.Wait()
	waitFor(t, func() bool { return len(pyshipInits()) == 0 }, 5*time.Second)
	if out, err := exec.Command(pyshipBin, "test", "--from", layoutDir).CombinedOutput(); err != nil {
		t.Fatalf("run after SIGKILL: %v\n%s", err, out)
	}
	assertNoLeftovers(t)

	after := readHostState(t)
	if after.mounts != before.mounts {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before.mounts, after.mounts)
	}
	if strings.Join(after.namespaces, " ") != strings.Join(before.namespaces, " ") {
		t.Errorf("network namespaces before %v, after %v", before.namespaces, after.namespaces)
	}
}

func runDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-run-*"))
	return dirs
}

func waitFor(t *testing.T, cond func() bool, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met within %s", within)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
