package layers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/sandbox"
)

func TestTailKeepsTheEnd(t *testing.T) {
	tl := newTail(10)
	for i := 0; i < 1000; i++ {
		tl.Write([]byte("0123456789abc"))
	}
	got := tl.String()
	if !strings.HasSuffix(got, "456789abc") || len(tl.buf) > 20 {
		t.Errorf("tail %q (buffer %d bytes)", got, len(tl.buf))
	}
	if !strings.HasPrefix(got, "[... 12990 bytes of output before this ...]") {
		t.Errorf("tail %q: want the count of what was left out", got)
	}
	small := newTail(100)
	small.Write([]byte("short"))
	if small.String() != "short" {
		t.Errorf("short output: %q", small.String())
	}
}

func TestLogWriterIsBounded(t *testing.T) {
	var logged []string
	w := logWriter(hclog.NewNullLogger())
	w.Emit = func(line string, _ bool) { logged = append(logged, line) }
	chunk := []byte(strings.Repeat("x", 1<<20))
	for i := 0; i < 64; i++ {
		w.Write(chunk)
	}
	if len(w.Partial()) > sandbox.MaxLine {
		t.Errorf("64 MiB without a newline kept %d bytes", len(w.Partial()))
	}
	w.Write([]byte("\nnext"))
	if w.Partial() != "next" || len(logged) != 1 || len(logged[0]) != sandbox.MaxLine {
		t.Errorf("after a newline: partial %q, %d lines logged", w.Partial(), len(logged))
	}
}

func TestRealDirInRefusesLinks(t *testing.T) {
	upper, host := t.TempDir(), t.TempDir()
	// A setup.py made /opt a link to a host directory that has a venv.
	if err := os.MkdirAll(filepath.Join(host, "venv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "venv", "pyvenv.cfg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(upper, "opt")); err != nil {
		t.Fatal(err)
	}
	if dir, err := realDirIn(upper, "/opt/venv"); err == nil {
		t.Errorf("the venv through a link resolved to %s", dir)
	}
	if err := os.MkdirAll(filepath.Join(upper, "srv", "venv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, err := realDirIn(upper, "/srv/venv"); err != nil || dir != filepath.Join(upper, "srv", "venv") {
		t.Errorf("a real venv: %q, %v", dir, err)
	}
}
