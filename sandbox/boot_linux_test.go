package sandbox

import (
	"strings"
	"testing"
)

func TestListeningPorts(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2382 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65532        0 2 1 0000000000000000 20 4 30 10 -1
   2: 00000000:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 3 1 0000000000000000 100 0 0 10 0
`
	got := listeningPorts(table)
	if len(got) != 2 || got[0] != 8080 || got[1] != 9090 {
		t.Errorf("listening ports %v, want [8080 9090] (the established connection is not listening)", got)
	}
}

func TestLineBufferIsBounded(t *testing.T) {
	b := newLineBuffer(3)
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 'x'
	}
	for i := 0; i < 100; i++ {
		if n, err := b.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if len(b.split.Partial()) > MaxLine {
		t.Errorf("100 MiB without a newline kept %d bytes, want at most %d", len(b.split.Partial()), MaxLine)
	}
	b.Write([]byte("\nline 2\nline 3\nline 4\npartial"))
	got := b.last(10)
	want := []string{"line 2", "line 3", "line 4", "partial"}
	if len(got) != len(want) {
		t.Fatalf("last lines %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	b2 := newLineBuffer(5)
	b2.Write(chunk[:MaxLine+10])
	b2.Write([]byte("\n"))
	if l := b2.last(1)[0]; !strings.HasSuffix(l, "[line cut at 16 KiB]") || len(l) > MaxLine+40 {
		t.Errorf("a long line is kept as %d bytes ending %q", len(l), l[len(l)-30:])
	}
}
