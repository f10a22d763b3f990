//go:build e2e

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tryEscapes is what the probe tries from inside a sandbox: each thing a hostile setup.py
// or app would do to reach the host. Every value is "ok" or the error it got.
func tryEscapes(args []string) map[string]string {
	r := map[string]string{}
	errText := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	r["core_pattern"] = errText(os.WriteFile("/proc/sys/kernel/core_pattern", []byte("|/bin/probe"), 0))
	r["drop_caches"] = errText(os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0))
	r["unshare_user"] = errText(unix.Unshare(unix.CLONE_NEWUSER))
	r["unshare_mount"] = errText(unix.Unshare(unix.CLONE_NEWNS))
	_ = os.MkdirAll("/tmp/m", 0o755)
	r["mount"] = errText(unix.Mount("tmpfs", "/tmp/m", "tmpfs", 0, ""))
	r["tiocsti"] = errText(unix.IoctlSetPointerInt(0, unix.TIOCSTI, int('x')))
	_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, true)
	r["keyctl"] = errText(err)
	r["ptrace_init"] = errText(unix.PtraceAttach(1))
	r["mknod"] = errText(unix.Mknod("/tmp/mem", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 1))))
	f, err := os.Open("/repo-device")
	if err == nil {
		f.Close()
	}
	r["repo_device"] = errText(err)
	// /proc/keys lists the host's kernel keys to their owners; masked, it is empty.
	keys, err := os.ReadFile("/proc/keys")
	r["proc_keys"] = fmt.Sprintf("%d bytes, %v", len(keys), err)
	_, err = os.Open("/dev/tty")
	r["controlling_tty"] = errText(err)
	sid, _ := unix.Getsid(0)
	r["own_session"] = fmt.Sprint(sid == os.Getpid())
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	r["uid_map"] = strings.Join(strings.Fields(string(uidMap)), " ")
	_, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
	r["io_uring"] = errText(errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	r["clone3"] = errText(errnoErr(errno))
	_, err = unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	r["vsock"] = errText(err)
	_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0) // ADDR_NO_RANDOMIZE
	r["personality_no_aslr"] = errText(errnoErr(errno))
	_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	r["personality_query"] = errText(errnoErr(errno))
	for _, addr := range args {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		r["connect "+addr] = errText(err)
	}
	return r
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// checkEscapes asserts that every escape attempt failed the way the sandbox makes it fail.
func checkEscapes(t *testing.T, r map[string]string) {
	t.Helper()
	for key, want := range map[string]string{
		"core_pattern":        "read-only file system",
		"drop_caches":         "read-only file system",
		"unshare_user":        "operation not permitted",
		"unshare_mount":       "operation not permitted",
		"mount":               "operation not permitted",
		"tiocsti":             "operation not permitted", // the filter answers before the kernel looks at fd 0
		"keyctl":              "operation not permitted",
		"ptrace_init":         "operation not permitted",
		"mknod":               "operation not permitted",
		"repo_device":         "permission denied", // nodev: a device node in the image is not a device
		"proc_keys":           "0 bytes, <nil>",
		"controlling_tty":     "no such device or address",
		"own_session":         "true",
		"io_uring":            "operation not permitted",
		"clone3":              "function not implemented",
		"vsock":               "operation not permitted",
		"personality_no_aslr": "operation not permitted",
		"personality_query":   "ok",
	} {
		if !strings.Contains(r[key], want) {
			t.Errorf("%s: got %q, want %q", key, r[key], want)
		}
	}
	// Root inside is a range of unused host ids, never the host's root.
	if f := strings.Fields(r["uid_map"]); len(f) != 3 || f[1] == "0" {
		t.Errorf("uid_map %q: the sandbox's ids must map to unprivileged host ids", r["uid_map"])
	}
}

// hostileRoot is a probe root holding a device node, as a repository or image could.
func hostileRoot(t *testing.T) string {
	t.Helper()
	root := probeRoot(t)
	// /dev/mem's numbers: if the sandbox let it work as a device, it would read the host's memory.
	if err := unix.Mknod(filepath.Join(root, "repo-device"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 1))); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestExecRefusesEscapes(t *testing.T) {
	root := hostileRoot(t)
	canary, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()
	var stdout, stderr bytes.Buffer
	err = Exec(context.Background(), ExecSpec{
		Root: root, Upper: filepath.Join(t.TempDir(), "upper"), Args: []string{probeArg, "hostile", canary.Addr().String()},
		Env: []string{"PATH=/bin"}, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, stderr.String())
	}
	var r map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	checkEscapes(t, r)
	// The build has a network namespace of its own: the host's loopback services are not there.
	if got := r["connect "+canary.Addr().String()]; !strings.Contains(got, "connection refused") {
		t.Errorf("connecting to the host's loopback %s: %q, want connection refused", canary.Addr(), got)
	}
}

func TestBootRefusesEscapesAsRoot(t *testing.T) {
	root := hostileRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	// The image's user is root: the sandbox must hold all the same.
	p, err := Boot(context.Background(), BootSpec{
		Layers: []string{root}, Args: []string{probeArg, "serve-hostile", ":8080"},
		Env: []string{"PATH=/bin"}, User: "0:0", Port: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	r := map[string]string{}
	getJSON(t, p, &r)
	checkEscapes(t, r)
}

func TestMountPointsStayInTheRoot(t *testing.T) {
	root := probeRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	// The image's /etc is an absolute link to a directory of the host, holding a hosts file.
	hostDir := t.TempDir()
	hosts := filepath.Join(hostDir, "hosts")
	if err := os.WriteFile(hosts, []byte("host's own\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	p, err := Boot(context.Background(), BootSpec{
		Layers: []string{root}, Args: []string{probeArg, "serve", ":8080"}, Env: []string{"PATH=/bin"}, Port: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	// While the sandbox runs, the host's file is still the host's: nothing is mounted on it.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), hostDir) {
		t.Errorf("a mount landed in the host directory %s", hostDir)
	}
	p.Stop(time.Second)
	if data, _ := os.ReadFile(hosts); string(data) != "host's own\n" {
		t.Errorf("the host's %s became %q", hosts, data)
	}
	entries, _ := os.ReadDir(hostDir)
	if len(entries) != 1 {
		t.Errorf("the sandbox made files in the host directory: %v", entries)
	}
}

func TestEgressRefusesThisMachine(t *testing.T) {
	root := probeRoot(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "host-only service")
	}))
	defer srv.Close()
	run := func(e *Egress) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := Exec(context.Background(), ExecSpec{
			Root: root, Upper: filepath.Join(t.TempDir(), "upper"), Args: []string{probeArg, "fetch", srv.URL + "/"},
			Env:    []string{"PATH=/bin", "NO_PROXY=127.0.0.1", "HTTP_PROXY=http://" + srv.Listener.Addr().String()},
			Egress: e, Stdout: &stdout, Stderr: &stderr,
		})
		if err != nil {
			t.Fatalf("Exec: %v\n%s", err, stderr.String())
		}
		return stdout.String()
	}
	var refused []string
	got := run(&Egress{Refused: func(dest, reason string) { refused = append(refused, dest+": "+reason) }})
	if !strings.HasPrefix(got, "403 ") || !strings.Contains(got, "loopback") || hits.Load() != 0 {
		t.Errorf("fetching the host's loopback service through the proxy: %q (%d hits), want 403 naming loopback", got, hits.Load())
	}
	if len(refused) != 1 || !strings.Contains(refused[0], srv.Listener.Addr().String()) {
		t.Errorf("refusals reported: %q", refused)
	}
	// A package index the user runs on this machine and named is reachable.
	got = run(&Egress{Allow: []string{srv.Listener.Addr().String()}})
	if got != "200 host-only service" || hits.Load() != 1 {
		t.Errorf("fetching an allowed index: %q (%d hits)", got, hits.Load())
	}
	// Without Egress there is no proxy at all.
	got = run(nil)
	if !strings.HasPrefix(got, "error:") || hits.Load() != 1 {
		t.Errorf("without egress: %q", got)
	}
}

func TestExecTimesOut(t *testing.T) {
	root := probeRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Exec(ctx, ExecSpec{Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "sleep"}, Env: []string{"PATH=/bin"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Exec took %s after its deadline", took)
	}
}

func TestExecLimitsMemory(t *testing.T) {
	root := probeRoot(t)
	err := Exec(context.Background(), ExecSpec{
		Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "alloc", "512"}, Env: []string{"PATH=/bin"},
		Limits: Limits{Memory: 64 << 20, CPUs: 1, Pids: 64},
	})
	var exit *ExitError
	if !errors.As(err, &exit) || !exit.OutOfMemory || !strings.Contains(err.Error(), "64 MiB") {
		t.Fatalf("a build step holding 512 MiB under a 64 MiB limit: %v, want killed for memory", err)
	}
	// The same command within its limit runs.
	err = Exec(context.Background(), ExecSpec{
		Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "alloc", "16"}, Env: []string{"PATH=/bin"},
		Limits: Limits{Memory: 256 << 20, CPUs: 1, Pids: 64},
	})
	if err != nil {
		t.Errorf("16 MiB under a 256 MiB limit: %v", err)
	}
}

func TestProgramGetsOnlyItsDescriptors(t *testing.T) {
	root := probeRoot(t)
	// pyship may have inherited descriptors that are not close-on-exec (a CI runner's
	// pipes, a make jobserver): the program must not get them, nor the sandbox's own.
	leaked, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer leaked.Close()
	if _, err := unix.FcntlInt(leaked.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		egress *Egress
		trace  *Trace
	}{{nil, nil}, {&Egress{}, nil}, {nil, &Trace{Under: "/app"}}} {
		egress := tc.egress
		var stdout, stderr bytes.Buffer
		err := Exec(context.Background(), ExecSpec{
			Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "fds"}, Env: []string{"PATH=/bin"},
			Egress: egress, Trace: tc.trace, Stdout: &stdout, Stderr: &stderr,
		})
		if err != nil {
			t.Fatalf("Exec: %v\n%s", err, stderr.String())
		}
		var extra []string
		for _, fd := range strings.Fields(stdout.String()) {
			if n, _, _ := strings.Cut(fd, "="); n != "0" && n != "1" && n != "2" {
				extra = append(extra, fd)
			}
		}
		if len(extra) > 0 {
			t.Errorf("egress %v, traced %v: the program holds descriptors beyond stdin, stdout and stderr: %v", egress != nil, tc.trace != nil, extra)
		}
	}
}

func TestMountPointsReplaceTheImagesLinks(t *testing.T) {
	root := probeRoot(t)
	// /tmp and /dev as links: mounted on where they lead, a tmpfs on /tmp would hide the
	// /dev made under it. The sandbox mounts on the paths themselves.
	if err := os.Symlink("/tmp/image-dev", filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/var/tmp", filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := Exec(context.Background(), ExecSpec{
		Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg}, Env: []string{"PATH=/bin"},
		Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	if !r.DevNull || r.WroteTmp != "ok" {
		t.Errorf("/dev/null %v, writing /tmp %q", r.DevNull, r.WroteTmp)
	}
}
