//go:build linux && e2e

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/sandbox"
)

// hostSecret is a file on the host that the smoke-host-files fixture tries to read.
const hostSecret = "/var/tmp/pyship-host-secret.txt"

// TestSmokeFixtures runs `pyship test` on every fixture that expects a verdict, and checks
// the verdict, its reason, the app's output and that nothing is left behind.
func TestSmokeFixtures(t *testing.T) {
	fixtures.Testbed(t)
	if err := os.WriteFile(hostSecret, []byte("pyship-host-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hostSecret) })
	root := filepath.Join("..", "..", "fixtures")
	apps, err := fixtures.Apps(root)
	if err != nil {
		t.Fatal(err)
	}
	// One cache for all: the stdlib fixtures share their (empty) dependency layer.
	cache := t.TempDir()
	ran := 0
	for _, app := range apps {
		want, err := fixtures.Load(filepath.Join(root, filepath.FromSlash(app)))
		if err != nil {
			t.Fatal(err)
		}
		if want.Smoke == nil {
			continue
		}
		ran++
		t.Run(app, func(t *testing.T) {
			src := copyFixture(t, app)
			start := time.Now()
			args := []string{"test", "--json", "--grace", "2s", src}
			if want.Smoke.Verdict == "pass" && want.Body != "" {
				args = append(args, "--body", want.Body)
			}
			r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, args...)
			took := time.Since(start)
			var report sandbox.Report
			if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
				t.Fatalf("stdout is not a report: %v\n%s", err, r.stdout)
			}
			wantCode := 0
			if want.Smoke.Verdict == "fail" {
				wantCode = exitTestFailed
			}
			if r.code != wantCode || report.Verdict != want.Smoke.Verdict || report.Failure != want.Smoke.Failure {
				t.Errorf("exit %d, verdict %s (%s: %s); want exit %d, %s (%s)", r.code, report.Verdict, report.Failure, report.Reason, wantCode, want.Smoke.Verdict, want.Smoke.Failure)
			}
			if !strings.Contains(report.Reason, want.Smoke.Reason) {
				t.Errorf("reason %q does not mention %q", report.Reason, want.Smoke.Reason)
			}
			if output := strings.Join(report.Output, "\n"); !strings.Contains(output, want.Smoke.Output) {
				t.Errorf("output does not show %q:\n%s", want.Smoke.Output, output)
			}
			if report.Killed != want.Smoke.Killed {
				t.Errorf("killed after the grace period: %v, want %v (teardown took %s)", report.Killed, want.Smoke.Killed, report.Teardown)
			}
			if report.Killed && report.Teardown < 2*time.Second {
				t.Errorf("killed after %s, before the 2s grace period", report.Teardown)
			}
			if d, err := time.ParseDuration(want.Smoke.MinFirstResponse); err == nil && report.FirstResponse < d {
				t.Errorf("first response after %s; the app cannot answer before %s", report.FirstResponse, d)
			}
			if report.Verdict == "pass" && (report.Usage.MemoryPeak == 0 || report.Usage.CPU == 0 || report.FirstResponse == 0) {
				t.Errorf("usage %+v, first response %s: want them measured", report.Usage, report.FirstResponse)
			}
			if want.Smoke.Failure == sandbox.FailOutOfMemory && report.Usage.OOMKills == 0 {
				t.Errorf("out of memory without an OOM kill counted")
			}
			// The machine is still responsive: a process starts at once.
			quick := time.Now()
			if err := exec.Command("true").Run(); err != nil || time.Since(quick) > 2*time.Second {
				t.Errorf("the host is not responsive after the run: %v, %s", err, time.Since(quick))
			}
			assertNoLeftovers(t)
			t.Logf("pyship test took %s, first response %s, teardown %s", took, report.FirstResponse, report.Teardown)
		})
	}
	if ran < 9 {
		t.Errorf("only %d fixtures expect a smoke verdict", ran)
	}
}

// assertNoLeftovers checks that no sandbox of this test left a cgroup, a run directory or a
// process behind.
func assertNoLeftovers(t *testing.T) {
	t.Helper()
	if cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/pyship/*"); len(cgroups) > 0 {
		var dirs []string
		for _, c := range cgroups {
			if st, err := os.Stat(c); err == nil && st.IsDir() {
				dirs = append(dirs, c)
			}
		}
		if len(dirs) > 0 {
			t.Errorf("cgroups left: %v", dirs)
		}
	}
	if unified, _ := filepath.Glob("/sys/fs/cgroup/pyship/*"); len(unified) > 0 {
		for _, c := range unified {
			if st, err := os.Stat(c); err == nil && st.IsDir() {
				t.Errorf("cgroup left: %s", c)
			}
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-run-*")); len(dirs) > 0 {
		t.Errorf("run directories left: %v", dirs)
	}
	if sandboxed := pyshipInits(); len(sandboxed) > 0 {
		t.Errorf("sandbox processes left: %v", sandboxed)
	}
}

// pyshipInits lists the processes that are sandbox inits (pyship re-executed as
// "pyship-sandbox-init").
func pyshipInits() []string {
	var pids []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		data, err := os.ReadFile(c)
		if err == nil && strings.HasPrefix(string(data), "pyship-sandbox-init") {
			pids = append(pids, filepath.Base(filepath.Dir(c)))
		}
	}
	return pids
}

// TestSmokeEnvFlag checks pyship test --env: an app that needs a secret to start fails
// without it, with a verdict that names it, and passes with it, which never reaches the
// image.
func TestSmokeEnvFlag(t *testing.T) {
	fixtures.Testbed(t)
	fixtures.TestbedPython(t, "3.14")
	src := copyFixture(t, "needs-env")
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}
	without := pyship(t, env, "test", "--json", src)
	var report sandbox.Report
	if err := json.Unmarshal([]byte(without.stdout), &report); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, without.stdout)
	}
	if without.code != exitTestFailed || !strings.Contains(report.Reason, "--env SECRET_KEY=VALUE") {
		t.Errorf("without the secret: exit %d, reason %q; want %d and the variable named", without.code, report.Reason, exitTestFailed)
	}
	oci := t.TempDir()
	with := pyship(t, env, "test", "--json", "--env", "SECRET_KEY=s3cret", "--body", "secret of 6 characters", src)
	if with.code != 0 {
		t.Fatalf("with --env: exit %d\n%s%s", with.code, with.stdout, with.stderr)
	}
	built := pyship(t, env, "build", "--oci-layout", oci, src)
	if built.code != 0 {
		t.Fatalf("build: exit %d\n%s", built.code, built.stderr)
	}
	blobs, err := filepath.Glob(filepath.Join(oci, "blobs", "sha256", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if data, err := os.ReadFile(b); err == nil && strings.Contains(string(data), "s3cret") {
			t.Errorf("the secret given to the smoke test is in the image (%s)", b)
		}
	}
	if bad := pyship(t, env, "test", "--env", "PORT=9", src); bad.code != exitUsage || !strings.Contains(bad.stderr, "--publish") {
		t.Errorf("--env PORT=9: exit %d, %s", bad.code, bad.stderr)
	}
}
