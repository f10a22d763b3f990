package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// pyship build on a repository whose requirements.txt is a FIFO or a link out of it stops
// at detection, at once, naming the file and showing nothing of the host.
func TestDetectHostileRepository(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"fifo", func(t *testing.T, dir string) {
			if err := unix.Mkfifo(filepath.Join(dir, "requirements.txt"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "named pipe"},
		{"link to /etc/passwd", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "requirements.txt")); err != nil {
				t.Fatal(err)
			}
		}, "outside the repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", "0")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte("print('hi')\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			done := make(chan error, 1)
			go func() {
				_, _, _, err := detectAndPlan(context.Background(), dir, common{}, hclog.NewNullLogger())
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("detection did not return within 10s")
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitDetect {
				t.Fatalf("got %v, want a detection failure (exit %d)", err, exitDetect)
			}
			if msg := err.Error(); !strings.Contains(msg, "requirements.txt") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "root:") {
				t.Errorf("error %q", msg)
			}
		})
	}
}
