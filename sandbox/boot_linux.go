package sandbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// App is an application running in run mode.
type App struct {
	id       string
	cmd      *exec.Cmd
	init     *initProcess
	listener net.Listener
	tmp      string
	hostPort int
	lines    *lineBuffer
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	usage    Usage
	// stopped is how long Stop took; killed is true when the app outlived the grace period.
	stopped time.Duration
	killed  bool
}

// Boot boots spec (run mode) and returns once the application's process has started.
// Everything it made is undone by Stop, which every caller must call.
func Boot(ctx context.Context, spec BootSpec) (*App, error) {
	if len(spec.Args) == 0 {
		return nil, errors.New("sandbox: no command")
	}
	if spec.Limits == (Limits{}) {
		spec.Limits = DefaultLimits
	}
	if spec.Writable <= 0 {
		spec.Writable = DefaultWritable
	}
	CleanLeftovers()
	a := &App{id: newID(), lines: newLineBuffer(500), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			a.teardown()
		}
	}()

	var err error
	a.tmp, err = os.MkdirTemp("", "pyship-run-"+a.id+"-")
	if err != nil {
		return nil, err
	}
	a.listener, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.HostPort)))
	if err != nil {
		return nil, fmt.Errorf("publishing port %d on 127.0.0.1: %w", spec.HostPort, err)
	}
	a.hostPort = a.listener.Addr().(*net.TCPAddr).Port
	lf, err := a.listener.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer lf.Close()

	out := io.Writer(a.lines)
	if spec.Output != nil {
		out = io.MultiWriter(a.lines, spec.Output)
	}
	ispec := initSpec{
		Lowers: spec.Layers, Args: spec.Args, Env: spec.Env, Dir: spec.Dir, Hostname: spec.Hostname,
		Boot:    &bootInit{Port: spec.Port, User: spec.User, Writable: spec.Writable},
		Shifted: os.Geteuid() == 0,
	}
	if ispec.Hostname == "" {
		ispec.Hostname = "pyship-" + a.id[:8]
	}
	// The app is not tied to ctx: it runs until Stop.
	a.init, err = spawn(context.WithoutCancel(ctx), spawnSpec{
		init: ispec, dir: a.tmp, id: a.id, limits: spec.Limits, published: lf,
		stdout: out, stderr: out, waitDelay: 2 * time.Second,
	})
	if a.init.cmd != nil {
		a.cmd = a.init.cmd
		go func() {
			a.waitErr = a.cmd.Wait()
			close(a.done)
		}()
	}
	if err != nil {
		return nil, err
	}
	if a.init.setup != "" {
		<-a.done
		return nil, setupError(a.init.setup)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	ok = true
	return a, nil
}

// HostPort is the loopback port on the host that reaches the app's port.
func (a *App) HostPort() int { return a.hostPort }

// Done is closed when the app has exited.
func (a *App) Done() <-chan struct{} { return a.done }

// ExitCode is the app's exit code (128+N when killed by signal N), once Done is closed.
func (a *App) ExitCode() int {
	if code, ok := exitCode(a.waitErr); ok {
		return code
	}
	if a.waitErr != nil {
		return -1
	}
	return 0
}

// Output returns the last n lines the app printed.
func (a *App) Output(n int) []string { return a.lines.last(n) }

// Usage reads the cgroup's counters. After Stop it returns the last reading.
func (a *App) Usage() Usage {
	if a.init == nil || a.init.cg == nil {
		return a.usage
	}
	if u, err := a.init.cg.stats(); err == nil {
		a.usage = u
	}
	return a.usage
}

// Listening returns the TCP ports something listens on inside the sandbox's network
// namespace, read from the kernel's socket tables.
func (a *App) Listening() []int {
	select {
	case <-a.done:
		return nil
	default:
	}
	pid := a.cmd.Process.Pid
	seen := map[int]bool{}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, port := range listeningPorts(string(data)) {
			if !seen[port] {
				seen[port] = true
				ports = append(ports, port)
			}
		}
	}
	return ports
}

// listeningPorts parses /proc/net/tcp{,6}: the local ports of sockets in state LISTEN (0A).
func listeningPorts(table string) []int {
	var ports []int
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
			ports = append(ports, int(port))
		}
	}
	return ports
}

// Stop asks the app to stop with SIGTERM, kills everything in the sandbox after grace,
// and removes what Boot made: the cgroup, the published port, the temporary directory.
// Mounts and the network namespace go with the sandbox's last process. It is safe to call
// more than once.
func (a *App) Stop(grace time.Duration) {
	a.stopOnce.Do(func() {
		start := time.Now()
		if a.cmd != nil && a.cmd.Process != nil {
			select {
			case <-a.done:
			default:
				_ = a.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-a.done:
				case <-time.After(grace):
					// Killing the init of a pid namespace kills every process in it.
					a.killed = true
					_ = a.cmd.Process.Kill()
					<-a.done
				}
			}
		}
		a.teardown()
		a.stopped = time.Since(start)
	})
}

// Stopped reports how long Stop took, and whether the app had to be killed.
func (a *App) Stopped() (time.Duration, bool) { return a.stopped, a.killed }

func (a *App) teardown() {
	if a.cmd != nil && a.cmd.Process != nil {
		select {
		case <-a.done:
		default:
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	}
	if a.listener != nil {
		a.listener.Close()
	}
	if a.init != nil {
		// The last reading is taken before the cgroup goes: cgroup v2 reads a deleted
		// cgroup as zeros without an error.
		a.Usage()
		a.init.close()
	}
	if a.tmp != "" {
		os.RemoveAll(a.tmp)
	}
}

// CleanLeftovers removes what sandboxes of pyship processes that no longer exist (killed
// with SIGKILL, say) left behind: temporary directories and cgroups.
func CleanLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-run-*"))
	for _, d := range dirs {
		_, owner, ok := parseRunDir(filepath.Base(d))
		if !ok || processAlive(owner) {
			continue
		}
		os.RemoveAll(d)
	}
	if os.Geteuid() != 0 {
		return
	}
	// Build sandboxes have a cgroup but no directory here.
	for _, parent := range cgroupParents() {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			id, owner, ok := parseRunDir("pyship-run-" + e.Name())
			if ok && !processAlive(owner) {
				removeCgroup(id)
			}
		}
	}
}

// cgroupParents are the cgroups that hold sandboxes' cgroups: pyship's in each v1
// hierarchy, and on v2 wherever newCgroup2 puts them.
func cgroupParents() []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent))
	if d := filepath.Join(cgroup2Mount, cgroupParent); exists(d) {
		dirs = append(dirs, d)
	}
	if own, err := ownCgroup2(cgroup2Mount); err == nil {
		if at := placeV2(cgroup2Mount, own); at != "/" {
			if d := filepath.Join(cgroup2Mount, at, cgroupParent); exists(d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// newID names a sandbox: the pyship process that owns it, and a random part.
func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// parseRunDir reads "pyship-run-<pid>-<rand>-<suffix>".
func parseRunDir(name string) (id string, owner int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(name, "pyship-run-"), "-")
	if len(parts) < 2 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil {
		return "", 0, false
	}
	return parts[0] + "-" + parts[1], pid, true
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// removeCgroup removes a sandbox's cgroup from every hierarchy, killing what is left in it.
func removeCgroup(id string) {
	for _, parent := range cgroupParents() {
		d := filepath.Join(parent, id)
		if !exists(d) {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		for i := 0; i < 50; i++ {
			if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lineBuffer keeps the last lines written to it.
type lineBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	split Lines
}

func newLineBuffer(max int) *lineBuffer {
	b := &lineBuffer{max: max}
	b.split.Emit = func(line string, cut bool) {
		if cut {
			line += " [line cut at 16 KiB]"
		}
		b.lines = append(b.lines, line)
		if len(b.lines) > 2*b.max {
			b.lines = append([]string(nil), b.lines[len(b.lines)-b.max:]...)
		}
	}
	return b
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.split.Write(p)
	if len(b.lines) > b.max {
		b.lines = append([]string(nil), b.lines[len(b.lines)-b.max:]...)
	}
	return n, err
}

func (b *lineBuffer) last(n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := b.lines
	if partial := b.split.Partial(); partial != "" {
		lines = append(append([]string(nil), lines...), partial)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append([]string(nil), lines...)
}
