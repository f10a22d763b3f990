//go:build linux && e2e

package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
)

// silentRegistry is a hostile registry: it accepts connections and never answers. stalled
// is closed at the first connection; accepted counts them.
func silentRegistry(t *testing.T) (addr string, stalled <-chan struct{}, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if len(conns) == 0 {
				close(ch)
			}
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// stallMode says where a stallingProxy stops.
type stallMode int

const (
	// stallUploads reads the first 4 KiB of each blob upload, then never reads on nor
	// answers.
	stallUploads stallMode = iota
	// stallDownloads sends the first 32 KiB of each blob larger than that, then nothing.
	stallDownloads
)

// stallingProxy stands in front of the real test-bed registry and stalls mid-body in the
// given mode. stalled is closed at the first stall. Stalled handlers are released when
// the test ends.
func stallingProxy(t *testing.T, registry string, mode stallMode) (addr string, stalled <-chan struct{}) {
	t.Helper()
	target, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	release, ch := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stall := func() {
		once.Do(func() { close(ch) })
		<-release
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case mode == stallUploads && strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
			head, _ := io.ReadAll(io.LimitReader(r.Body, 4<<10))
			if len(head) == 4<<10 {
				stall()
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(head))
		case mode == stallDownloads && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:"):
			w = &stallingWriter{ResponseWriter: w, left: 32 << 10, stall: stall}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // first: Close waits for the stalled handlers
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

// stallingWriter passes on left bytes, then stalls.
type stallingWriter struct {
	http.ResponseWriter
	left  int
	stall func()
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.left {
		w.left -= len(p)
		return w.ResponseWriter.Write(p)
	}
	n, _ := w.ResponseWriter.Write(p[:w.left])
	w.ResponseWriter.(http.Flusher).Flush()
	w.stall()
	return n, errors.New("stalled on purpose")
}

// started is a pyship process running in the background.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	begin          time.Time
}

func startPyship(t *testing.T, env []string, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command(pyshipBin, args...), done: make(chan struct{}), begin: time.Now()}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// wait waits for the process to end, at most within, and kills it after that.
func (s *started) wait(t *testing.T, within time.Duration) result {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(within):
		s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("pyship %s still ran after %s; killed\n%s", strings.Join(s.cmd.Args[1:], " "), within, s.stderr.String())
	}
	r := result{stdout: s.stdout.String(), stderr: s.stderr.String(), code: s.cmd.ProcessState.ExitCode()}
	t.Logf("pyship %s: exit %d after %s\n%s", strings.Join(s.cmd.Args[1:], " "), r.code, time.Since(s.begin).Round(time.Millisecond), r.stderr)
	return r
}

// untilStalled waits for the registry to stall, or for pyship to end first.
func (s *started) untilStalled(t *testing.T, stalled <-chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-stalled:
	case <-s.done:
		t.Fatalf("pyship ended before the registry stalled:\n%s", s.stderr.String())
	case <-time.After(within):
		t.Fatalf("the registry did not stall within %s:\n%s", within, s.stderr.String())
	}
}

// stallCase is one registry that stops answering in the middle of a command.
type stallCase struct {
	name string
	// setup starts the hostile registry and returns the command's arguments and
	// environment, what signals the stall, and the repository that must hold no tag
	// afterwards (or "").
	setup func(t *testing.T) (args, env []string, stalled <-chan struct{}, untagged string)
	// code and want are the exit code and message of a run that times out.
	code int
	want func(args []string) []string
}

func stallCases(t *testing.T, reg string) []stallCase {
	t.Helper()
	src := copyFixture(t, "stdlib-port")
	// Incompressible data makes the application layer big enough to stall mid-upload;
	// the base's layers are mounted, not uploaded.
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	warm := t.TempDir() // the base, pulled once by the first case that builds
	silent := func(args ...string) func(t *testing.T) ([]string, []string, <-chan struct{}, string) {
		return func(t *testing.T) ([]string, []string, <-chan struct{}, string) {
			addr, stalled, _ := silentRegistry(t)
			var out []string
			for _, a := range args {
				out = append(out, strings.ReplaceAll(strings.ReplaceAll(a, "SILENT", addr), "SRC", src))
			}
			return out, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, stalled, ""
		}
	}
	return []stallCase{
		{name: "publish, registry silent",
			setup: silent("publish", "SRC", "--skip-test", "--image", "SILENT/e2e/stall:v1"),
			code:  exitPublish, want: registryNamed},
		{name: "build --push, registry silent",
			setup: silent("build", "SRC", "--push", "--image", "SILENT/e2e/stall:v1"),
			code:  exitPublish, want: registryNamed},
		{name: "test --image, registry silent",
			setup: silent("test", "--from", "SILENT/library/python:3.13-slim"),
			code:  exitBase, want: registryNamed},
		{name: "base pull, mirror silent",
			setup: silent("build", "SRC", "--base", "SILENT/library/python:3.13-slim"),
			code:  exitBase, want: registryNamed},
		{name: "publish, upload stalls mid-body",
			setup: func(t *testing.T) ([]string, []string, <-chan struct{}, string) {
				addr, stalled := stallingProxy(t, reg, stallUploads)
				repo := addr + "/e2e/stall-" + uniqueTag()
				return []string{"publish", src, "--skip-test", "--image", repo + ":v1"}, []string{"PYSHIP_CACHE_DIR=" + warm}, stalled, repo
			},
			code: exitPublish, want: registryNamed},
		{name: "base pull, download stalls mid-body",
			setup: func(t *testing.T) ([]string, []string, <-chan struct{}, string) {
				addr, stalled := stallingProxy(t, reg, stallDownloads)
				return []string{"build", src, "--base", addr + "/library/python:3.13-slim"}, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, stalled, ""
			},
			code: exitBase, want: registryNamed},
		{name: "test --image, download stalls mid-body",
			setup: func(t *testing.T) ([]string, []string, <-chan struct{}, string) {
				addr, stalled := stallingProxy(t, reg, stallDownloads)
				return []string{"test", "--from", addr + "/library/python:3.13-slim"}, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, stalled, ""
			},
			code: exitBase, want: registryNamed},
	}
}

// registryNamed: the message names the registry (the host of the last argument that is
// an image reference) and the timeout.
func registryNamed(args []string) []string {
	for i := len(args) - 1; i >= 0; i-- {
		if host, _, ok := strings.Cut(args[i], "/"); ok && strings.HasPrefix(host, "127.0.0.1:") {
			return []string{"registry " + host + " did not answer within 2s", "PYSHIP_REGISTRY_TIMEOUT"}
		}
	}
	return nil
}

// TestRegistryStalls: a registry that stops answering, before or in the middle of a body,
// ends the command within the timeout, in the publish or base band, with a message that
// names it and the timeout; nothing is tagged.
func TestRegistryStalls(t *testing.T) {
	reg := fixtures.Testbed(t)
	for _, tc := range stallCases(t, reg) {
		t.Run(tc.name, func(t *testing.T) {
			args, env, stalled, untagged := tc.setup(t)
			p := startPyship(t, append(env, "PYSHIP_REGISTRY_TIMEOUT=2s"), args...)
			p.untilStalled(t, stalled, 3*time.Minute)
			since := time.Now()
			r := p.wait(t, time.Minute)
			t.Logf("ended %s after the stall began", time.Since(since).Round(time.Millisecond))
			if took := time.Since(since); took > 20*time.Second {
				t.Errorf("ended %s after the stall began, with a 2s timeout", took)
			}
			if r.code != tc.code || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want exit %d and nothing on stdout", r.code, r.stdout, tc.code)
			}
			for _, want := range tc.want(args) {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q", want)
				}
			}
			assertUntagged(t, reg, untagged)
		})
	}
}

// TestRegistryStallInterrupted: SIGTERM stops a command stalled on a registry within
// seconds, with exit 130, and sets no tag.
func TestRegistryStallInterrupted(t *testing.T) {
	reg := fixtures.Testbed(t)
	for _, tc := range stallCases(t, reg) {
		t.Run(tc.name, func(t *testing.T) {
			args, env, stalled, untagged := tc.setup(t)
			p := startPyship(t, append(env, "PYSHIP_REGISTRY_TIMEOUT=1h"), args...)
			p.untilStalled(t, stalled, 3*time.Minute)
			time.Sleep(200 * time.Millisecond) // well into the stall
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			since := time.Now()
			r := p.wait(t, time.Minute)
			t.Logf("ended %s after SIGTERM", time.Since(since).Round(time.Millisecond))
			if took := time.Since(since); took > 10*time.Second {
				t.Errorf("ended %s after SIGTERM", took)
			}
			if r.code != exitInterrupted || !strings.Contains(r.stderr, "interrupted") || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want exit %d, interrupted", r.code, r.stdout, exitInterrupted)
			}
			assertUntagged(t, reg, untagged)
		})
	}
}

// assertUntagged checks, on the registry itself, that repo (named through a proxy) has no
// v1 tag.
func assertUntagged(t *testing.T, reg, repo string) {
	t.Helper()
	if repo == "" {
		return
	}
	_, path, _ := strings.Cut(repo, "/")
	ref, err := name.ParseReference(reg + "/" + path + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Errorf("%s is tagged after a stalled publish", ref)
	}
}
