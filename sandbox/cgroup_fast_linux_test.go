package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
