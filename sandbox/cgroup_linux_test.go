//go:build e2e

package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"

	"github.com/pyship/pyship/fixtures"
)

// TestCgroupV2Leaf is the "privileged container" case on a real cgroup v2 hierarchy: a
// cgroup that holds processes cannot delegate controllers, so prepareV2 must move its
// processes into a leaf first, and sandboxes made under it must get their limits.
func TestCgroupV2Leaf(t *testing.T) {
	if cgroups.Mode() != cgroups.Unified {
		t.Skip("needs a cgroup v2 host: cmd/pyship's TestCgroupV2VM runs it in one")
	}
	fixtures.Need(t, os.Geteuid() == 0, "making cgroups needs root")
	at := "/pyship-test-" + newID()
	dir := filepath.Join(cgroup2Mount, at)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := startSleeper(t)
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_, _ = sleeper.Process.Wait()
		for _, d := range []string{at + "/pyship/t", at + "/pyship", at + "/pyship-init", at} {
			_ = os.Remove(filepath.Join(cgroup2Mount, d))
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(sleeper.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	// The kernel's rule that made `pyship test` fail in privileged containers.
	if err := enableControllers(dir); err == nil {
		t.Fatal("a cgroup holding a process delegated controllers: this host does not enforce the rule under test")
	}

	parent, err := prepareV2(cgroup2Mount, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := at + "/pyship"; parent != want {
		t.Errorf("parent %q, want %q", parent, want)
	}
	if got := cgroupOf(t, sleeper.Process.Pid); got != at+"/"+leafName {
		t.Errorf("the process that was in %s is in %s, want %s/%s", at, got, at, leafName)
	}
	for _, d := range []string{dir, filepath.Join(cgroup2Mount, parent)} {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(data)); !containsAll(got, v2Controllers) {
			t.Errorf("%s delegates %v, want %v", d, got, v2Controllers)
		}
	}
	// Once prepared, it stays usable: a second pyship finds nothing to move.
	if again, err := prepareV2(cgroup2Mount, at); err != nil || again != parent {
		t.Fatalf("second prepareV2: %q, %v", again, err)
	}

	cg, err := newCgroup2In(parent, "t", Limits{Memory: 64 << 20, CPUs: 0.5, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "16", "cpu.max": "50000 100000"} {
		data, err := os.ReadFile(filepath.Join(cgroup2Mount, parent, "t", file))
		if err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s: %q, %v; want %q", file, data, err, want)
		}
	}
	if err := cg.add(sleeper.Process.Pid); err != nil {
		t.Fatalf("adding a process to the sandbox's cgroup: %v", err)
	}
	if got := cgroupOf(t, sleeper.Process.Pid); got != parent+"/t" {
		t.Errorf("the process added to the sandbox's cgroup is in %s", got)
	}
	_ = sleeper.Process.Kill()
	_, _ = sleeper.Process.Wait()
	if err := cg.delete(); err != nil {
		t.Errorf("deleting the sandbox's cgroup: %v", err)
	}
}

// TestUsageAfterStop guards the teardown order: cgroup v2 reads a deleted cgroup as zeros,
// so the usage a report shows must be read before the cgroup goes.
func TestUsageAfterStop(t *testing.T) {
	root := probeRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	p, err := Boot(context.Background(), BootSpec{
		Layers: []string{root}, Args: []string{probeArg, "serve", ":8080"},
		Env: []string{"PATH=/bin"}, Dir: "/", User: "65534:65534", Port: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/", p.HostPort())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %s: %v", url, err)
		}
	}
	// No reading before Stop: the one after it must come from the cgroup before it went.
	p.Stop(time.Second)
	if u := p.Usage(); u.CPU <= 0 || u.MemoryPeak == 0 {
		t.Errorf("usage after Stop %+v: want the CPU time and memory peak of the run (cgroup mode %v)", u, cgroups.Mode())
	}
}

func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{probeArg, "sleep"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// cgroupOf reads a process's cgroup v2 path.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "0::"); ok {
			return v
		}
	}
	t.Fatalf("no cgroup v2 line in %q", data)
	return ""
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
