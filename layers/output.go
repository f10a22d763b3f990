package layers

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// outputTail is how much of a sandboxed command's output pyship keeps for its messages;
// the rest goes only to the debug log.
const outputTail = 256 << 10

// tail keeps the last bytes written to it, so a command that prints without end cannot
// grow pyship.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.max {
		t.dropped += int64(len(p) - t.max)
		p = p[len(p)-t.max:]
	}
	t.buf = append(t.buf, p...)
	// The buffer may grow to twice the tail before the old part is dropped, so each byte
	// is moved at most once.
	if len(t.buf) > 2*t.max {
		over := len(t.buf) - t.max
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// String is what was kept, said to be the end when something came before it.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept, dropped := t.buf, t.dropped
	if len(kept) > t.max {
		dropped += int64(len(kept) - t.max)
		kept = kept[len(kept)-t.max:]
	}
	if dropped > 0 {
		return fmt.Sprintf("[... %d bytes of output before this ...]\n%s", dropped, kept)
	}
	return string(kept)
}

// TimeoutError reports a build command stopped for taking too long.
type TimeoutError struct {
	What   string
	Limit  time.Duration
	Output string
}

func (e *TimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s took longer than %s and was stopped", e.What, e.Limit)
	if lines := errorLines(e.Output); lines != "" {
		b.WriteString("; its last output:\n" + lines)
	}
	b.WriteString("\nhint: if it really needs longer, set PYSHIP_BUILD_TIMEOUT (for example 1h); otherwise look for a setup.py or build step that waits on something (a prompt, a network service)")
	return b.String()
}
