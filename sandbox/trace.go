package sandbox

import (
	"sort"
	"strings"
	"sync"
)

// maxTracePaths bounds the paths a trace keeps: a program that looks up more leaves the
// trace incomplete rather than growing pyship's memory without end.
const maxTracePaths = 200_000

// Trace is what a traced program named: every path under Under that any of its system
// calls looked up, and whether the trace is complete.
type Trace struct {
	// Under limits the paths kept to those at or below it (an absolute path in the
	// sandbox, like /app).
	Under string

	mu    sync.Mutex
	paths map[string]bool
	named map[string]bool
	// served is set once every traced process has gone with the trace served to the
	// end; a trace never served is incomplete.
	served bool
	// incomplete says why the trace may miss a path the program reached; empty when it
	// is complete.
	incomplete string
}

// Paths returns the paths the program named under t.Under, sorted, with those it gave a
// second name (a rename's or a link's source) in named.
func (t *Trace) Paths() (paths, named []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.paths {
		paths = append(paths, p)
	}
	for p := range t.named {
		named = append(named, p)
	}
	sort.Strings(paths)
	sort.Strings(named)
	return paths, named
}

// Incomplete says why the trace may have missed a path the program reached, or "".
func (t *Trace) Incomplete() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.incomplete == "" && !t.served {
		return "the program did not run under the trace"
	}
	return t.incomplete
}

func (t *Trace) miss(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.incomplete == "" {
		t.incomplete = why
	}
}

// end records that a run of the program was served to its end.
func (t *Trace) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.served = true
}

// under says whether p is t.Under or below it.
func (t *Trace) under(p string) bool {
	return p == t.Under || strings.HasPrefix(p, strings.TrimSuffix(t.Under, "/")+"/")
}

func (t *Trace) add(p string, names bool) {
	if !t.under(p) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.paths == nil {
		t.paths = map[string]bool{}
	}
	if len(t.paths) >= maxTracePaths {
		if t.incomplete == "" {
			t.incomplete = "the program looked up more paths than the trace keeps"
		}
		return
	}
	t.paths[p] = true
	if names {
		if t.named == nil {
			t.named = map[string]bool{}
		}
		t.named[p] = true
	}
}
