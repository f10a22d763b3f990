//go:build e2e

package sandbox

import (
	"context"
	"errors"
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

func TestRelativeCgroup(t *testing.T) {
	const (
		hostMount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
		bindMount = "30 23 0:26 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
		elsewhere = "30 23 0:26 / /mnt/cg rw - cgroup2 cgroup2 rw\n"
		tmpfsOver = "31 23 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
	)
	tests := []struct {
		name, self, mountinfo, want, err string
	}{
		{name: "host", self: "0::/user.slice/user-0.slice/session-1.scope\n", mountinfo: hostMount, want: "/user.slice/user-0.slice/session-1.scope"},
		{name: "hybrid lines before the unified one", self: "12:pids:/x\n1:name=systemd:/y\n0::/ci\n", mountinfo: hostMount, want: "/ci"},
		{name: "container with a cgroup namespace", self: "0::/\n", mountinfo: hostMount, want: "/"},
		{name: "moved by an earlier pyship", self: "0::/pyship-init\n", mountinfo: hostMount, want: "/pyship-init"},
		{name: "subtree bind-mounted", self: "0::/docker/abc/sub\n", mountinfo: bindMount, want: "/sub"},
		{name: "subtree root", self: "0::/docker/abc\n", mountinfo: bindMount, want: "/"},
		{name: "outside the mounted subtree", self: "0::/docker/abcd\n", mountinfo: bindMount, err: "outside the cgroup /docker/abc"},
		{name: "no cgroup2 at the mount point", self: "0::/\n", mountinfo: elsewhere + tmpfsOver, err: "no cgroup2 file system is mounted at /sys/fs/cgroup"},
		{name: "the last mount wins", self: "0::/docker/abc/x\n", mountinfo: hostMount + bindMount, want: "/x"},
		{name: "cgroup v1 only", self: "4:memory:/x\n", mountinfo: hostMount, err: "no cgroup v2 entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := relativeCgroup(tc.self, tc.mountinfo, "/sys/fs/cgroup")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fakeCgroups writes the interface files placeV2 reads into a directory tree: each key is
// a cgroup, each value its files.
func fakeCgroups(t *testing.T, tree map[string]map[string]string) string {
	t.Helper()
	mnt := t.TempDir()
	for cg, files := range tree {
		dir := filepath.Join(mnt, cg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mnt
}

func TestPlaceV2(t *testing.T) {
	all := "cpuset cpu io memory pids"
	hostRoot := map[string]string{"cgroup.controllers": all, "cgroup.procs": "1\n"}
	nsRoot := func(procs, controllers string) map[string]string {
		return map[string]string{"cgroup.type": "domain", "cgroup.controllers": controllers, "cgroup.procs": procs}
	}
	tests := []struct {
		name string
		tree map[string]map[string]string
		own  string
		want string
	}{
		{name: "host root, pyship in a systemd unit", tree: map[string]map[string]string{"/": hostRoot}, own: "/system.slice/runner.service", want: "/"},
		{name: "privileged container: its root holds its processes", tree: map[string]map[string]string{"/": nsRoot("1\n7\n", all)}, own: "/", want: "/"},
		{name: "privileged container, second run from a moved shell", tree: map[string]map[string]string{"/": nsRoot("", all)}, own: "/pyship-init", want: "/"},
		{name: "container with an init system: an empty root", tree: map[string]map[string]string{"/": nsRoot("", all)}, own: "/system.slice/app.service", want: "/"},
		{name: "root holds processes, pyship in a cgroup of its own", tree: map[string]map[string]string{"/": nsRoot("1\n", all)}, own: "/ci", want: "/ci"},
		{name: "nested and moved before", tree: map[string]map[string]string{"/": nsRoot("1\n", all)}, own: "/ci/pyship-init", want: "/ci"},
		{name: "empty root without the controllers", tree: map[string]map[string]string{"/": nsRoot("", "cpu pids")}, own: "/ci", want: "/ci"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mnt := fakeCgroups(t, tc.tree)
			if got := placeV2(mnt, tc.own); got != tc.want {
				t.Errorf("placeV2(%q) = %q, want %q", tc.own, got, tc.want)
			}
		})
	}
}

func TestPrepareV2MissingController(t *testing.T) {
	mnt := fakeCgroups(t, map[string]map[string]string{"/ci": {"cgroup.type": "domain", "cgroup.controllers": "cpu pids", "cgroup.procs": "1\n"}})
	_, err := prepareV2(mnt, "/ci")
	var setup *cgroupSetupError
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "memory controller") || !strings.Contains(err.Error(), "hint: ") {
		t.Fatalf("got %v, want a setup error naming the memory controller, with a hint", err)
	}
}

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
