//go:build linux && e2e

package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"
)

// TestRun keeps an app running with `pyship run`, reaches it on the URL printed on stdout,
// and stops it with Ctrl-C (SIGINT): exit 0 and nothing left behind.
func TestRun(t *testing.T) {
	fixtures.Testbed(t)
	cmd := exec.Command(pyshipBin, "run", copyFixture(t, "stdlib-port"))
	cmd.Env = append(os.Environ(), "PYSHIP_CACHE_DIR="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	urls := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		urls <- strings.TrimSpace(line)
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(3 * time.Minute):
		t.Fatalf("pyship run printed no URL:\n%s", stderr.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("stdout %q is not the app's URL", url)
	}
	status, body := waitHTTP(t, url, 30*time.Second)
	if status != 200 || !strings.Contains(body, "stdlib ok") {
		t.Errorf("GET %s: %d %q", url, status, body)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pyship run after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("pyship run did not stop after Ctrl-C")
	}
	if !strings.Contains(stderr.String(), "stdlib") && !strings.Contains(stderr.String(), "GET / HTTP") {
		t.Errorf("the app's output is not on stderr:\n%s", stderr.String())
	}
	assertNoLeftovers(t)
}
