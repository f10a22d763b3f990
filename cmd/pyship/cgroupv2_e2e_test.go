//go:build linux && e2e

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/fixtures/vm"
	"github.com/pyship/pyship/sandbox"
)

// vmFixtures are the apps TestCgroupV2VM smoke-tests on cgroup v2: one that passes, one
// the memory limit stops, one the pids limit stops.
var vmFixtures = []string{"flask-hello", "smoke-memory-hog", "smoke-fork-bomb"}

// TestCgroupV2VM runs `pyship test` where GitHub's hosted runners run it, on a cgroup v2
// host, which this machine is not: in a VM booted with cgroup_no_v1=all. pyship, the sandbox
// package's tests and the images are built here from the tree and shared with the VM
// read-only. In the VM it checks the verdicts and usage of three fixtures, that the VM is
// still responsive after the fork bomb, and pyship started the way CI starts it inside a
// privileged container: from a cgroup that holds processes, in a cgroup namespace of its
// own, twice in a row.
func TestCgroupV2VM(t *testing.T) {
	if testing.Short() {
		t.Skip("the cgroup v2 VM boots under emulation for minutes: not with -short")
	}
	fixtures.Testbed(t)
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// Generous: TCG runs a whole boot in 2 to 3 minutes here; a hung VM is killed at the end.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	m, err := vm.Build(ctx, repo)
	fixtures.Need(t, !errors.Is(err, vm.ErrNotBuilt), fmt.Sprint(err))
	if err != nil {
		t.Fatal(err)
	}

	share := t.TempDir()
	staticBuild(t, repo, "build", "-o", filepath.Join(share, "pyship"), "./cmd/pyship")
	staticBuild(t, repo, "build", "-o", filepath.Join(share, "container"), "./fixtures/vm/container")
	staticBuild(t, repo, "test", "-c", "-tags", "e2e", "-o", filepath.Join(share, "sandbox.test"), "./sandbox")

	images := filepath.Join(share, "images")
	cache := t.TempDir()
	digests := map[string]string{}
	for _, app := range vmFixtures {
		r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, "build", copyFixture(t, app), "--oci-layout", images)
		digests[app] = builtDigest(t, r).String()
	}

	// Inside the VM. Each smoke test gets a generous deadline: TCG is slow, and a slow
	// answer is not what this test is about.
	test := func(app string) string {
		return fmt.Sprintf("PYSHIP_CACHE_DIR=/tmp/cache /host/pyship test --json --grace 2s --timeout 180s --from /host/images@%s", digests[app])
	}
	var s vm.Script
	// GitHub's runners start jobs in a systemd unit's cgroup, not the root: the script's
	// shell moves into one that also holds another process, and everything after runs there.
	s.Case("ci-cgroup", "mkdir /sys/fs/cgroup/ci && echo $$ >/sys/fs/cgroup/ci/cgroup.procs && { sleep 600 & } && cat /proc/self/cgroup")
	for _, app := range vmFixtures {
		s.Case(app, test(app))
	}
	// After the fork bomb the VM still runs a process, and no sandbox cgroup is left.
	s.Case("responsive", "echo alive; find /sys/fs/cgroup/pyship -mindepth 1 -type d")
	// A privileged container: its root cgroup holds its processes (a shell, a sleep, pyship)
	// and is all it sees. The second run starts from the shell the first one moved.
	var in vm.Script
	in.Case("container-1", "sleep 600 & s=$!; "+test("flask-hello"))
	in.Case("container-2", test("smoke-fork-bomb"))
	in.Case("container-self", "cat /proc/self/cgroup; kill $s")
	if err := in.Write(share, "in-container"); err != nil {
		t.Fatal(err)
	}
	s.Case("container", `mkdir /sys/fs/cgroup/ctr && sh -c 'echo $$ >/sys/fs/cgroup/ctr/cgroup.procs; exec /host/container /host/in-container'`)
	s.Case("container-cgroups", "cat /sys/fs/cgroup/ctr/cgroup.subtree_control; test -d /sys/fs/cgroup/ctr/pyship-init && echo leaf; find /sys/fs/cgroup/ctr/pyship -mindepth 1 -type d")
	s.Case("sandbox-tests", "/host/sandbox.test -test.v -test.count=1 -test.timeout 10m 2>&1")
	if err := s.Write(share, "run"); err != nil {
		t.Fatal(err)
	}

	console := filepath.Join(t.TempDir(), "console.log")
	res, err := m.Run(ctx, share, console)
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(console)
			t.Logf("VM console (%s):\n%s", console, lastLines(string(data), 80))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM: booted %s; whole run %s", res.Boot, res.Took.Round(time.Second))
	if !strings.Contains(res.Boot, "controllers: cpu memory pids") {
		t.Errorf("the VM is not a cgroup v2 host with cpu, memory and pids delegated: %q", res.Boot)
	}
	if !res.Done {
		t.Errorf("the VM stopped before its script ended; cases run: %v", res.Order)
	}
	get := func(name string) *vm.Case {
		c := res.Cases[name]
		if c == nil || !c.Ended {
			t.Errorf("case %s did not finish in the VM", name)
			return &vm.Case{Name: name, Code: -1}
		}
		return c
	}

	if c := get("ci-cgroup"); c.Out != "0::/ci\n" {
		t.Errorf("the script's shell is in %q, want 0::/ci", c.Out)
	}
	expect := map[string]*fixtures.SmokeExpect{}
	for _, app := range vmFixtures {
		want, err := fixtures.Load(filepath.Join(repo, "fixtures", app))
		if err != nil {
			t.Fatal(err)
		}
		expect[app] = want.Smoke
		checkVMSmoke(t, get(app), want.Smoke)
	}
	if c := get("responsive"); c.Code != 0 || strings.TrimSpace(c.Out) != "alive" {
		t.Errorf("after the fork bomb: exit %d, %q; want only \"alive\" (no sandbox cgroup left)", c.Code, c.Out)
	}
	checkVMSmoke(t, get("container-1"), expect["flask-hello"])
	checkVMSmoke(t, get("container-2"), expect["smoke-fork-bomb"])
	if c := get("container-self"); strings.TrimSpace(strings.Split(c.Out, "\n")[0]) != "0::/pyship-init" {
		t.Errorf("the container's shell is in %q after pyship ran, want 0::/pyship-init (moved into the leaf)", c.Out)
	}
	if c := get("container"); c.Code != 0 {
		t.Errorf("the container's script exited %d", c.Code)
	}
	if c := get("container-cgroups"); c.Out != "cpu memory pids\nleaf\n" {
		t.Errorf("the container's cgroup after pyship: %q; want cpu memory pids delegated, the leaf pyship-init, no sandbox cgroup left", c.Out)
	}

	c := get("sandbox-tests")
	if c.Code != 0 {
		t.Errorf("the sandbox package's tests failed on cgroup v2 (exit %d):\n%s", c.Code, c.Out)
	}
	for _, name := range []string{"TestCgroupV2Leaf", "TestUsageAfterStop", "TestBootServesThePublishedPort"} {
		if !regexp.MustCompile(`(?m)^--- PASS: ` + name + ` `).MatchString(c.Out) {
			t.Errorf("%s did not pass in the VM:\n%s", name, lastLines(c.Out, 40))
		}
	}
	passed := regexp.MustCompile(`(?m)^\s*--- PASS: `).FindAllString(c.Out, -1)
	skipped := regexp.MustCompile(`(?m)^\s*--- SKIP: .*$`).FindAllString(c.Out, -1)
	t.Logf("sandbox tests in the VM: %d passed, %d skipped %q, in %s", len(passed), len(skipped), skipped, c.Took.Round(100*time.Millisecond))
}

// checkVMSmoke checks one `pyship test --json` run in the VM against what its fixture
// expects, and that every usage figure was measured.
func checkVMSmoke(t *testing.T, c *vm.Case, want *fixtures.SmokeExpect) {
	t.Helper()
	var r sandbox.Report
	if err := json.Unmarshal([]byte(c.Out), &r); err != nil {
		t.Errorf("%s: exit %d, stdout is not a report (%v):\n%s", c.Name, c.Code, err, c.Out)
		return
	}
	wantCode := 0
	if want.Verdict == "fail" {
		wantCode = exitTestFailed
	}
	if c.Code != wantCode || r.Verdict != want.Verdict || r.Failure != want.Failure {
		t.Errorf("%s: exit %d, verdict %s (%s: %s); want exit %d, %s (%s)", c.Name, c.Code, r.Verdict, r.Failure, r.Reason, wantCode, want.Verdict, want.Failure)
	}
	if !strings.Contains(r.Reason, want.Reason) {
		t.Errorf("%s: reason %q does not mention %q", c.Name, r.Reason, want.Reason)
	}
	if output := strings.Join(r.Output, "\n"); !strings.Contains(output, want.Output) {
		t.Errorf("%s: output does not show %q:\n%s", c.Name, want.Output, output)
	}
	if r.Usage.MemoryPeak == 0 || r.Usage.CPU <= 0 {
		t.Errorf("%s: usage %+v: the memory peak and CPU time read as zero", c.Name, r.Usage)
	}
	if want.Failure == sandbox.FailOutOfMemory && r.Usage.OOMKills == 0 {
		t.Errorf("%s: out of memory without an OOM kill counted", c.Name)
	}
	t.Logf("%s in the VM: %s %s in %s, first response %s, usage: memory peak %d MiB, CPU %s, OOM kills %d",
		c.Name, r.Verdict, r.Failure, c.Took.Round(100*time.Millisecond), r.FirstResponse.Round(time.Millisecond), r.Usage.MemoryPeak>>20, r.Usage.CPU.Round(time.Millisecond), r.Usage.OOMKills)
}

// staticBuild runs `go build` or `go test -c` in repo with cgo off: the VM has no C library.
func staticBuild(t *testing.T, repo string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
