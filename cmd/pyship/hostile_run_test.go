//go:build linux && e2e

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/sandbox"
)

// hostileSpec is one pyship run of the hostile-input suite.
type hostileSpec struct {
	args []string
	// env is added to the suite's environment (which plants the secrets and the cache).
	env []string
	// deadline is how long pyship may take before it counts as hung and is killed.
	deadline time.Duration
	// tty runs pyship in a session of its own whose controlling terminal is a pty that is
	// its stdin and stderr: what a person at a terminal gives it.
	tty bool
	// limitMemory caps pyship's address space, so a case that makes the old code read
	// without end fails on its own instead of taking the machine's memory.
	limitMemory bool
	// sigterm, when set, sends SIGTERM this long after the start.
	sigterm time.Duration
}

// hostileResult is what a run did, seen from outside.
type hostileResult struct {
	stdout, stderr string
	// stderrBytes counts all of stderr; stderr keeps only its first hostileOutputCap bytes.
	stderrBytes int64
	code        int
	took        time.Duration
	// hung is true when pyship was still running at its deadline and was killed.
	hung bool
	// peakRSS is pyship's own peak resident memory (VmHWM), in bytes.
	peakRSS int64
	// ttyInput is what was typed into the terminal (by TIOCSTI) and never read.
	ttyInput string
}

// hostileOutputCap bounds what the test keeps of pyship's output.
const hostileOutputCap = 8 << 20

// cappedBuffer keeps the first and the last max/2 bytes written to it, and counts all.
type cappedBuffer struct {
	mu    sync.Mutex
	max   int
	head  []byte
	tail  []byte
	total int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total += int64(len(p))
	half := c.max / 2
	rest := p
	if room := half - len(c.head); room > 0 {
		n := min(room, len(rest))
		c.head = append(c.head, rest[:n]...)
		rest = rest[n:]
	}
	if len(rest) > 0 {
		c.tail = append(c.tail, rest...)
		if len(c.tail) > half {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-half:]...)
		}
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if skipped := c.total - int64(len(c.head)+len(c.tail)); skipped > 0 {
		return string(c.head) + fmt.Sprintf("\n[... %d bytes not kept ...]\n", skipped) + string(c.tail)
	}
	return string(c.head) + string(c.tail)
}

// hostileEnv is the environment of every run: the host's, a private temporary directory
// and secrets that must never come back in pyship's output or reach a sandbox.
func (s *hostileSuite) hostileEnv(extra []string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "TMPDIR", "PYSHIP_CACHE_DIR", "SOURCE_DATE_EPOCH", "GITHUB_ACTIONS":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "TMPDIR="+s.tmp, "PYSHIP_CACHE_DIR="+s.warmCache)
	env = append(env, s.secretEnv...)
	return append(env, extra...)
}

// run runs pyship as spec says, killing its process group at the deadline.
func (s *hostileSuite) run(spec hostileSpec) (*hostileResult, error) {
	if spec.deadline == 0 {
		spec.deadline = 2 * time.Minute
	}
	cmd := exec.Command(pyshipBin, spec.args...)
	cmd.Env = s.hostileEnv(spec.env)
	var stdout, stderr cappedBuffer
	stdout.max, stderr.max = hostileOutputCap, hostileOutputCap
	cmd.Stdout = &stdout
	// A session of its own: no terminal of the test's (a developer's shell) is reachable.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var tty *hostilePty
	if spec.tty {
		var err error
		if tty, err = openHostilePty(); err != nil {
			return nil, fmt.Errorf("opening a pty: %w", err)
		}
		defer tty.close()
		cmd.Stdin, cmd.Stderr = tty.slave, tty.slave
		cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, 0
		go tty.drain(&stderr)
	} else {
		cmd.Stderr = &stderr
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	s.addPid(pid)
	if spec.limitMemory {
		lim := unix.Rlimit{Cur: 3 << 30, Max: 3 << 30}
		if err := unix.Prlimit(pid, unix.RLIMIT_AS, &lim, nil); err != nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = cmd.Wait()
			return nil, fmt.Errorf("limiting pyship's memory: %w", err)
		}
	}
	done := make(chan struct{})
	peakc := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm := vmHWM(pid); hwm > peak {
				peak = hwm
			}
			select {
			case <-done:
				peakc <- peak
				return
			case <-tick.C:
			}
		}
	}()
	var hung atomic.Bool
	timer := time.AfterFunc(spec.deadline, func() {
		hung.Store(true)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
	if spec.sigterm > 0 {
		sig := time.AfterFunc(spec.sigterm, func() { _ = cmd.Process.Signal(syscall.SIGTERM) })
		defer sig.Stop()
	}
	err := cmd.Wait()
	took := time.Since(start)
	timer.Stop()
	close(done)
	// Whatever pyship left in its process group goes with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, err
	}
	r := &hostileResult{code: cmd.ProcessState.ExitCode(), took: took, hung: hung.Load(), peakRSS: <-peakc}
	if tty != nil {
		tty.finish()
		r.ttyInput = tty.pendingInput()
	}
	r.stdout, r.stderr, r.stderrBytes = stdout.String(), stderr.String(), stderr.total
	return r, nil
}

// vmHWM reads a process's peak resident set size, in bytes.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// shorten keeps the start and the end of a long text.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + fmt.Sprintf("\n[... %d bytes ...]\n", len(s)-n) + s[len(s)-n/2:]
}

// hostilePty is a pseudo-terminal: the test holds the master and a slave, pyship gets the
// slave as its controlling terminal.
type hostilePty struct {
	master, slave *os.File
	mu            sync.Mutex
	echoed        bytes.Buffer
	drained       chan struct{}
}

func openHostilePty() (*hostilePty, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	var n uint32
	var ioErr error
	rc, err := m.SyscallConn()
	if err != nil {
		m.Close()
		return nil, err
	}
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
	}); err != nil || ioErr != nil {
		m.Close()
		return nil, errors.Join(err, ioErr)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &hostilePty{master: m, slave: sl, drained: make(chan struct{})}, nil
}

// drain reads what the terminal shows (pyship's stderr and the echo of anything typed)
// into w, so pyship never blocks on a full terminal.
func (p *hostilePty) drain(w io.Writer) {
	defer close(p.drained)
	buf := make([]byte, 64<<10)
	for {
		n, err := p.master.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// finish stops draining once the terminal has shown what it had.
func (p *hostilePty) finish() {
	time.Sleep(100 * time.Millisecond)
	_ = p.master.SetReadDeadline(time.Now())
	<-p.drained
}

// pendingInput returns what sits in the terminal's input queue: typed (TIOCSTI) and not
// read by anyone.
func (p *hostilePty) pendingInput() string {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return ""
	}
	_ = rc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			return
		}
		tio.Lflag &^= unix.ICANON | unix.ECHO
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 0, 0
		_ = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio)
	})
	var out bytes.Buffer
	buf := make([]byte, 4096)
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf)
			if n <= 0 || err != nil {
				return true
			}
			out.Write(buf[:n])
		}
	})
	return out.String()
}

func (p *hostilePty) close() {
	p.master.Close()
	p.slave.Close()
}

// errorMessage is pyship's final error: from the last line that starts with "pyship: ".
func errorMessage(stderr string) string {
	i := strings.LastIndex(stderr, "\npyship: ")
	switch {
	case i >= 0:
		return stderr[i+1:]
	case strings.HasPrefix(stderr, "pyship: "):
		return stderr
	}
	return ""
}

// crashRe matches what a Go program prints when it dies of a panic or a fatal error.
var crashRe = regexp.MustCompile(`(?m)^(panic: |fatal error: |runtime: out of memory|goroutine \d+ \[)`)

// probeLines reads the HOSTILE lines of a smoke report (pyship test --json on stdout).
func probeLinesFromReport(stdout string) []string {
	var report sandbox.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		return nil
	}
	var lines []string
	for _, l := range report.Output {
		if i := strings.Index(l, "HOSTILE "); i >= 0 {
			lines = append(lines, l[i:])
		}
	}
	return lines
}
