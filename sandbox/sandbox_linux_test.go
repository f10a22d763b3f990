//go:build e2e

package sandbox

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"

	"golang.org/x/sys/unix"
)

// The sandboxed command in these tests is this test binary, copied into a bare root file
// system and started as "probe": it reports what it sees from inside.
const probeArg = "probe"

func TestMain(m *testing.M) {
	Init()
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == probeArg {
		os.Exit(probe(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// report is what the probe saw.
type report struct {
	PID         int    `json:"pid"`
	UID         int    `json:"uid"`
	GID         int    `json:"gid"`
	Hostname    string `json:"hostname"`
	Cwd         string `json:"cwd"`
	CapBnd      string `json:"cap_bnd"`
	NoNewPrivs  string `json:"no_new_privs"`
	SeesHost    bool   `json:"sees_host"`
	WroteRoot   string `json:"wrote_root"`
	WroteRO     string `json:"wrote_read_only"`
	WroteTmp    string `json:"wrote_tmp"`
	DevNull     bool   `json:"dev_null"`
	EnvMarker   string `json:"env_marker"`
	HostEnvSeen bool   `json:"host_env_seen"`
}

func probe(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "exit":
			code, _ := strconv.Atoi(args[1])
			return code
		case "sleep":
			time.Sleep(time.Hour)
			return 0
		case "fds":
			// fds: the descriptors the probe holds, besides the one listing them.
			entries, _ := os.ReadDir("/proc/self/fd")
			var fds []string
			for _, e := range entries {
				// The Go runtime's own (epoll, eventfd) and the listing's are the probe's.
				target, _ := os.Readlink("/proc/self/fd/" + e.Name())
				if target != "" && !strings.HasPrefix(target, "anon_inode:") {
					fds = append(fds, e.Name()+"="+target)
				}
			}
			fmt.Println(strings.Join(fds, " "))
			return 0
		case "look":
			// look OP:PATH...: read a file, stat a path, list a directory, rename a
			// file, make a symbolic link, or run a program that stats a path, in order.
			for _, a := range args[1:] {
				op, p, _ := strings.Cut(a, ":")
				switch op {
				case "read":
					_, _ = os.ReadFile(p)
				case "stat":
					_, _ = os.Stat(p)
				case "list":
					_, _ = os.ReadDir(p)
				case "rename":
					from, to, _ := strings.Cut(p, ">")
					_ = os.Rename(from, to)
				case "symlink":
					_ = os.Symlink("target", p)
				case "loop":
					// loop:N: stat a missing path N times; print the time each took.
					n, _ := strconv.Atoi(p)
					start := time.Now()
					for range n {
						_, _ = os.Stat("/missing")
					}
					fmt.Println(time.Since(start) / time.Duration(n))
				case "at":
					// at:DIR>NAME: stat NAME relative to a descriptor of DIR.
					dir, name, _ := strings.Cut(p, ">")
					if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0); err == nil {
						var st unix.Stat_t
						_ = unix.Fstatat(fd, name, &st, 0)
						unix.Close(fd)
					}
				case "exchange":
					a, b, _ := strings.Cut(p, ">")
					_ = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
				case "exec":
					_ = exec.Command(p).Run()
				case "child":
					_ = exec.Command("/bin/"+probeArg, "look", "stat:"+p).Run()
				}
			}
			return 0
		case "alloc":
			// alloc MIB: hold that much memory, touched.
			n, _ := strconv.Atoi(args[1])
			held := make([][]byte, 0, n)
			for i := 0; i < n; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(j)
				}
				held = append(held, b)
			}
			fmt.Println(len(held))
			return 0
		case "hostile":
			// hostile [ADDR]: try what a hostile build or app would; report each result.
			_ = json.NewEncoder(os.Stdout).Encode(tryEscapes(args[1:]))
			return 0
		case "serve-hostile":
			// serve-hostile ADDR: answer every request with the escape attempts' results.
			err := http.ListenAndServe(args[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(tryEscapes(nil))
			}))
			fmt.Fprintln(os.Stderr, err)
			return 3
		case "fetch":
			// fetch URL: get URL through the proxy HTTP_PROXY names, as pip would, also
			// for a loopback address (Go's own rules would go direct).
			client := http.DefaultClient
			if u, err := url.Parse(os.Getenv("HTTP_PROXY")); err == nil && u.Host != "" {
				client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
			}
			resp, err := client.Get(args[1])
			if err != nil {
				fmt.Println("error:", err)
				return 0
			}
			body, _ := io.ReadAll(resp.Body)
			fmt.Printf("%d %s", resp.StatusCode, body)
			return 0
		case "serve-writes":
			// serve-writes ADDR: answer every request with what writing to the image gave.
			err := http.ListenAndServe(args[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(tryWrites())
			}))
			fmt.Fprintln(os.Stderr, err)
			return 3
		case "serve":
			// serve ADDR: answer every request with what the probe sees.
			err := http.ListenAndServe(args[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_ = json.NewEncoder(w).Encode(look())
			}))
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(look()); err != nil {
		return 1
	}
	return 0
}

// look reports what the probe sees from inside.
func look() report {
	var r report
	r.PID = os.Getpid()
	r.UID, r.GID = os.Getuid(), os.Getgid()
	r.Hostname, _ = os.Hostname()
	r.Cwd, _ = os.Getwd()
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			r.CapBnd = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
			r.NoNewPrivs = strings.TrimSpace(v)
		}
	}
	_, err := os.Stat(os.Getenv("HOST_MARKER"))
	r.SeesHost = err == nil
	errText := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	r.WroteRoot = errText(os.WriteFile("/written", []byte("x"), 0o644))
	r.WroteRO = errText(os.WriteFile("/ro/written", []byte("x"), 0o644))
	r.WroteTmp = errText(os.WriteFile("/tmp/written", []byte("x"), 0o644))
	_, err = os.Stat("/dev/null")
	r.DevNull = err == nil
	r.EnvMarker = os.Getenv("MARKER")
	r.HostEnvSeen = os.Getenv("PYSHIP_HOST_ONLY") != ""
	return r
}

// tryWrites does to the image's file system what apps do, and what an app that rewrites
// its own code would: it reports each result, "ok" or the error.
func tryWrites() map[string]string {
	result := func(err error) string {
		if err == nil {
			return "ok"
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno.Error()
		}
		return err.Error()
	}
	got := map[string]string{}
	f, err := os.OpenFile("/app/app.py", os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString("print('rewritten')\n")
		f.Close()
	}
	got["append /app/app.py"] = result(err)
	got["rename /app/views.py"] = result(os.Rename("/app/views.py", "/app/moved.py"))
	got["remove /app/models.py"] = result(os.Remove("/app/models.py"))
	err = os.MkdirAll("/app/instance", 0o755)
	if err == nil {
		err = os.WriteFile("/app/instance/app.sqlite3", []byte("db"), 0o644)
	}
	got["create /app/instance/app.sqlite3"] = result(err)
	err = os.MkdirAll("/home/app/.cache", 0o755)
	if err == nil {
		err = os.WriteFile("/home/app/.cache/hit", []byte("x"), 0o644)
	}
	got["create /home/app/.cache/hit"] = result(err)
	got["create /etc/written"] = result(os.WriteFile("/etc/written", []byte("x"), 0o644))
	got["create /written"] = result(os.WriteFile("/written", []byte("x"), 0o644))
	// Past the cap, the kernel refuses: the app cannot fill the machine's memory.
	f, err = os.Create("/app/instance/big")
	if err == nil {
		chunk := make([]byte, 1<<20)
		for i := 0; i < 64 && err == nil; i++ {
			_, err = f.Write(chunk)
		}
		f.Close()
	}
	got["fill /app/instance/big"] = result(err)
	return got
}

// probeRoot makes a root file system holding only the probe.
func probeRoot(t *testing.T) string {
	t.Helper()
	fixtures.Need(t, os.Geteuid() == 0, "the sandbox tests run as root")
	root := t.TempDir()
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", probeArg), self, 0o755); err != nil {
		t.Fatal(err)
	}
	copyLibraries(t, "/proc/self/exe", root)
	return root
}

// copyLibraries copies the dynamic loader and the shared libraries an executable needs
// into root, at the same paths, so that it runs there.
func copyLibraries(t *testing.T, exe, root string) {
	t.Helper()
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			data := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(data, 0); err != nil {
				t.Fatal(err)
			}
			files = append(files, strings.TrimRight(string(data), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		for _, dir := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"} {
			if _, err := os.Stat(filepath.Join(dir, lib)); err == nil {
				files = append(files, filepath.Join(dir, lib))
				break
			}
		}
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, file)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExecIsolates(t *testing.T) {
	root := probeRoot(t)
	marker := filepath.Join(t.TempDir(), "host-marker")
	if err := os.WriteFile(marker, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYSHIP_HOST_ONLY", "1")
	upper := filepath.Join(t.TempDir(), "upper")
	var stdout, stderr bytes.Buffer
	err := Exec(context.Background(), ExecSpec{
		Root: root, Upper: upper, Args: []string{probeArg},
		Env:      []string{"PATH=/bin", "HOST_MARKER=" + marker, "MARKER=given"},
		Dir:      "/tmp",
		Hostname: "pyship-test",
		Mounts:   []Mount{{Type: "bind", Source: t.TempDir(), Target: "/ro", ReadOnly: true}},
		Stdout:   &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Exec: %v\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	if r.PID <= 1 || r.PID > 100 {
		t.Errorf("pid %d, want a small pid above 1 (a pid namespace of its own, pyship's init as 1)", r.PID)
	}
	if r.Hostname != "pyship-test" || r.Cwd != "/tmp" {
		t.Errorf("hostname %q cwd %q", r.Hostname, r.Cwd)
	}
	if r.SeesHost {
		t.Errorf("the sandbox sees the host file %s", marker)
	}
	if r.EnvMarker != "given" || r.HostEnvSeen {
		t.Errorf("environment: marker %q, host variable seen %v; want only the spec's", r.EnvMarker, r.HostEnvSeen)
	}
	bnd, err := strconv.ParseUint(r.CapBnd, 16, 64)
	if err != nil {
		t.Fatalf("CapBnd %q: %v", r.CapBnd, err)
	}
	const capSysAdmin, capMknod = 21, 27
	if bnd&(1<<capSysAdmin) != 0 || bnd&(1<<capMknod) != 0 || r.NoNewPrivs != "1" {
		t.Errorf("capability bounding set %s, no_new_privs %s: CAP_SYS_ADMIN and CAP_MKNOD must be gone", r.CapBnd, r.NoNewPrivs)
	}
	if r.WroteRoot != "ok" || r.WroteTmp != "ok" || !r.DevNull {
		t.Errorf("writes: root %s, tmp %s; /dev/null %v", r.WroteRoot, r.WroteTmp, r.DevNull)
	}
	if !strings.Contains(r.WroteRO, "read-only") {
		t.Errorf("writing to a read-only mount: %s", r.WroteRO)
	}
	// Writes land in the upper directory; the root is never touched.
	if _, err := os.Stat(filepath.Join(upper, "written")); err != nil {
		t.Errorf("the write to / is not in the upper directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "written")); err == nil {
		t.Errorf("the write to / reached the root directory")
	}
	if _, err := os.Stat(filepath.Join(upper, "tmp", "written")); err == nil {
		t.Errorf("/tmp is not a tmpfs: its file reached the upper directory")
	}
	// Nothing Exec made is left next to the upper directory.
	entries, _ := os.ReadDir(filepath.Dir(upper))
	if len(entries) != 1 {
		t.Errorf("left next to the upper directory: %v", entries)
	}
}

func TestExecExitCode(t *testing.T) {
	root := probeRoot(t)
	err := Exec(context.Background(), ExecSpec{Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "exit", "3"}, Env: []string{"PATH=/bin"}})
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("got %v, want exit code 3", err)
	}
}

func TestExecMissingCommand(t *testing.T) {
	root := probeRoot(t)
	err := Exec(context.Background(), ExecSpec{Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{"python3"}, Env: []string{"PATH=/usr/bin:/bin"}})
	var setup *SetupError
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), `"python3" not found`) {
		t.Fatalf("got %v, want a setup error naming python3", err)
	}
}

func TestExecCancelKillsEverything(t *testing.T) {
	root := probeRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Exec(ctx, ExecSpec{Root: root, Upper: filepath.Join(t.TempDir(), "u"), Args: []string{probeArg, "sleep"}, Env: []string{"PATH=/bin"}})
	}()
	// Find the sleeping probe from the host: its executable, seen from the host, is
	// /bin/probe inside the sandbox's root.
	var pids []string
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pids = probePIDs()
	}
	if len(pids) == 0 {
		t.Fatal("the probe never started")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			t.Errorf("sandbox process %s survived", pid)
		}
	}
}

func probePIDs() []string {
	var pids []string
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && target == "/bin/"+probeArg {
			pids = append(pids, filepath.Base(filepath.Dir(exe)))
		}
	}
	return pids
}

func TestBootServesThePublishedPort(t *testing.T) {
	root := probeRoot(t)
	marker := filepath.Join(t.TempDir(), "host-marker")
	if err := os.WriteFile(marker, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	p, err := Boot(context.Background(), BootSpec{
		Layers: []string{root}, Args: []string{probeArg, "serve", ":8080"},
		Env: []string{"PATH=/bin", "HOST_MARKER=" + marker}, Dir: "/", User: "65534:65534", Port: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	var r report
	getJSON(t, p, &r)
	if r.UID != 65534 || r.GID != 65534 {
		t.Errorf("the app runs as %d:%d, want 65534:65534", r.UID, r.GID)
	}
	if r.PID == 1 || r.SeesHost {
		t.Errorf("pid %d (init must be pyship's), sees host file %v", r.PID, r.SeesHost)
	}
	// The root directory is root's, as in the image: another user may not write there.
	if !strings.Contains(r.WroteRoot, "permission denied") || r.WroteTmp != "ok" {
		t.Errorf("writes: root %q (want permission denied), /tmp %q", r.WroteRoot, r.WroteTmp)
	}
	if got := p.Listening(); !slices.Contains(got, 8080) {
		t.Errorf("listening ports %v, want 8080", got)
	}
	u := p.Usage()
	if u.CPU <= 0 || u.MemoryPeak == 0 {
		t.Errorf("usage %+v: want CPU time and a memory peak", u)
	}
	id := p.id
	p.Stop(time.Second)
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", p.HostPort())); err == nil {
		t.Errorf("the published port still answers after Stop")
	}
	for _, parent := range cgroupParents() {
		if exists(filepath.Join(parent, id)) {
			t.Errorf("cgroup left after Stop: %s", filepath.Join(parent, id))
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-run-"+id+"-*")); len(leftovers) > 0 {
		t.Errorf("directories left after Stop: %v", leftovers)
	}
}

// getJSON decodes into v the answer of the app p runs on its published port, waiting up to
// 10 s for it to listen.
func getJSON(t *testing.T, p *App, v any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", p.HostPort()))
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(v)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on the published port %d: %v\n%s", p.HostPort(), err, strings.Join(p.Output(20), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBootReportsExit(t *testing.T) {
	root := probeRoot(t)
	p, err := Boot(context.Background(), BootSpec{Layers: []string{root}, Args: []string{probeArg, "exit", "7"}, Env: []string{"PATH=/bin"}, Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not exit")
	}
	if code := p.ExitCode(); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
}

// TestBootGivesAWritableView checks the writable layer of run mode: the app writes to the
// image's file system as a container runtime lets it (its directories, its home), the
// image's owners and modes still bind it (it cannot rewrite root's code), its writes stop
// at the size cap, and nothing it wrote reaches the layers on the host.
func TestBootGivesAWritableView(t *testing.T) {
	const capBytes = 16 << 20
	for _, tc := range []struct {
		name string
		user string
		want map[string]string
	}{
		{"app user", "65532:65532", map[string]string{
			"append /app/app.py":               "permission denied",
			"rename /app/views.py":             "operation not permitted",
			"remove /app/models.py":            "operation not permitted",
			"create /app/instance/app.sqlite3": "ok",
			"create /home/app/.cache/hit":      "ok",
			"create /etc/written":              "permission denied",
			"create /written":                  "permission denied",
			"fill /app/instance/big":           "no space left on device",
		}},
		// Root inside may change anything, as in a container, and still nothing on the host.
		{"root", "0:0", map[string]string{
			"append /app/app.py":               "ok",
			"rename /app/views.py":             "ok",
			"remove /app/models.py":            "ok",
			"create /app/instance/app.sqlite3": "ok",
			"create /home/app/.cache/hit":      "ok",
			"create /etc/written":              "ok",
			"create /written":                  "ok",
			"fill /app/instance/big":           "no space left on device",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := probeRoot(t)
			imageLayout(t, root)
			before := treeState(t, root)
			p, err := Boot(context.Background(), BootSpec{
				Layers: []string{root}, Args: []string{probeArg, "serve-writes", ":8080"},
				Env: []string{"PATH=/bin"}, Dir: "/app", User: tc.user, Port: 8080, Writable: capBytes,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(time.Second)
			var got map[string]string
			getJSON(t, p, &got)
			for _, op := range slices.Sorted(maps.Keys(tc.want)) {
				if got[op] != tc.want[op] {
					t.Errorf("%s: %q, want %q", op, got[op], tc.want[op])
				}
			}
			p.Stop(time.Second)
			if after := treeState(t, root); !maps.Equal(before, after) {
				t.Errorf("the run changed the image's files on the host:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// imageLayout lays out in root what pyship's image holds, as layers.Unpack extracts it
// (owners are the sandbox's ids on the host): code owned by root in /app, which is root's
// and the app group's with the sticky bit, and the app user's home.
func imageLayout(t *testing.T, root string) {
	t.Helper()
	for _, d := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{"/", 0, 0, 0o755},
		{"/etc", 0, 0, 0o755},
		{"/home", 0, 0, 0o755},
		{"/home/app", 65532, 65532, 0o755},
		{"/app", 0, 65532, 0o775 | os.ModeSticky},
	} {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, HostID(d.uid), HostID(d.gid)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"app.py", "views.py", "models.py"} {
		p := filepath.Join(root, "app", name)
		if err := os.WriteFile(p, []byte("print('"+name+"')\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, HostID(0), HostID(0)); err != nil {
			t.Fatal(err)
		}
	}
}

// treeState lists every entry under root with its mode, owner and content.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%s %d:%d", info.Mode(), st.Uid, st.Gid)
		if info.Mode().IsRegular() && info.Size() < 1<<20 {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(data)
		}
		state[strings.TrimPrefix(p, root)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}
