package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is an application running in run mode.
type Process struct {
	id       string
	cmd      *exec.Cmd
	cg       cgroup
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

// Start boots spec and returns once the application's process has started. Everything it
// made is undone by Stop, which every caller must call.
func Start(ctx context.Context, spec RunSpec) (*Process, error) {
	if len(spec.Args) == 0 {
		return nil, errors.New("sandbox: no command")
	}
	if spec.Limits == (Limits{}) {
		spec.Limits = DefaultLimits
	}
	CleanLeftovers()
	p := &Process{id: newID(), lines: newLineBuffer(500), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			p.teardown()
		}
	}()

	var err error
	p.tmp, err = os.MkdirTemp("", "pyship-run-"+p.id+"-")
	if err != nil {
		return nil, err
	}
	child := childSpec{
		Spec: Spec{Over: spec.Layers, Args: spec.Args, Env: spec.Env, Dir: spec.Dir, Hostname: spec.Hostname},
		Run:  &runChild{Port: spec.Port, User: spec.User},
		// The work directory becomes a tmpfs inside the sandbox's mount namespace.
		Merged: filepath.Join(p.tmp, "merged"), Work: filepath.Join(p.tmp, "work"),
	}
	if child.Spec.Hostname == "" {
		child.Spec.Hostname = "pyship-" + p.id[:8]
	}
	for _, d := range []string{child.Merged, child.Work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	p.listener, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.HostPort)))
	if err != nil {
		return nil, fmt.Errorf("publishing port %d on 127.0.0.1: %w", spec.HostPort, err)
	}
	p.hostPort = p.listener.Addr().(*net.TCPAddr).Port
	lf, err := p.listener.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer lf.Close()

	if os.Geteuid() == 0 {
		if p.cg, err = newCgroup(p.id, spec.Limits); err != nil {
			return nil, err
		}
	}
	data, err := json.Marshal(child)
	if err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer errR.Close()
	defer errW.Close()

	out := io.Writer(p.lines)
	if spec.Output != nil {
		out = io.MultiWriter(p.lines, spec.Output)
	}
	p.cmd = exec.Command("/proc/self/exe")
	p.cmd.Args = []string{initArg}
	p.cmd.Env = []string{}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.ExtraFiles = []*os.File{specR, errW, lf}
	p.cmd.WaitDelay = 2 * time.Second
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	p.cmd.SysProcAttr = attr
	if err := p.cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES) {
			return nil, &PrivilegeError{Err: err}
		}
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	specR.Close()
	errW.Close()
	// The init process waits for its spec, so it is in the cgroup before anything runs.
	if p.cg != nil {
		if err := p.cg.add(p.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("adding the sandbox to its cgroup: %w", err)
		}
	}
	if _, err := specW.Write(data); err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	specW.Close()
	setupMsg, _ := io.ReadAll(errR)
	if len(setupMsg) > 0 {
		<-p.done
		return nil, &SetupError{Msg: string(setupMsg)}
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	ok = true
	return p, nil
}

// HostPort is the loopback port on the host that reaches the app's port.
func (p *Process) HostPort() int { return p.hostPort }

// Done is closed when the app has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the app's exit code (128+N when killed by signal N), once Done is closed.
func (p *Process) ExitCode() int {
	var exit *exec.ExitError
	if errors.As(p.waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exit.ExitCode()
	}
	if p.waitErr != nil {
		return -1
	}
	return 0
}

// Output returns the last n lines the app printed.
func (p *Process) Output(n int) []string { return p.lines.last(n) }

// Usage reads the cgroup's counters. After Stop it returns the last reading.
func (p *Process) Usage() Usage {
	if p.cg == nil {
		return p.usage
	}
	if u, err := p.cg.stats(); err == nil {
		p.usage = u
	}
	return p.usage
}

// Listening returns the TCP ports something listens on inside the sandbox's network
// namespace, read from the kernel's socket tables.
func (p *Process) Listening() []int {
	select {
	case <-p.done:
		return nil
	default:
	}
	pid := p.cmd.Process.Pid
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
// and removes what Start made: the cgroup, the published port, the temporary directory.
// Mounts and the network namespace go with the sandbox's last process. It is safe to call
// more than once.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		start := time.Now()
		if p.cmd != nil && p.cmd.Process != nil {
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(grace):
					// Killing the init of a pid namespace kills every process in it.
					p.killed = true
					_ = p.cmd.Process.Kill()
					<-p.done
				}
			}
		}
		p.teardown()
		p.stopped = time.Since(start)
	})
}

// Stopped reports how long Stop took, and whether the app had to be killed.
func (p *Process) Stopped() (time.Duration, bool) { return p.stopped, p.killed }

func (p *Process) teardown() {
	if p.cmd != nil && p.cmd.Process != nil {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.listener != nil {
		p.listener.Close()
	}
	if p.cg != nil {
		// The last reading is taken before the cgroup goes: cgroup v2 reads a deleted
		// cgroup as zeros without an error.
		p.Usage()
		// The kernel frees a cgroup only once its last process is gone; that takes a moment
		// after the kill.
		for i := 0; i < 50; i++ {
			if err := p.cg.delete(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.cg = nil
	}
	if p.tmp != "" {
		os.RemoveAll(p.tmp)
	}
}

// CleanLeftovers removes what sandboxes of pyship processes that no longer exist (killed
// with SIGKILL, say) left behind: temporary directories and cgroups.
func CleanLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-run-*"))
	for _, d := range dirs {
		id, owner, ok := parseRunDir(filepath.Base(d))
		if !ok || processAlive(owner) {
			continue
		}
		os.RemoveAll(d)
		if os.Geteuid() == 0 {
			removeCgroup(id)
		}
	}
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
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent, id))
	if d := filepath.Join("/sys/fs/cgroup", cgroupParent, id); exists(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
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

// The init side of run mode.

// networkFiles gives the sandbox /etc/hosts and /etc/resolv.conf of its own.
func networkFiles(root, scratch, hostname string) error {
	files := map[string]string{
		"hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n",
		"resolv.conf": "# pyship: the sandbox has no network beyond its own loopback\n",
	}
	for name, content := range files {
		src := filepath.Join(scratch, name)
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			return err
		}
		if err := mountOne(root, Mount{Type: "bind", Source: src, Target: "/etc/" + name, ReadOnly: true}); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings up lo, the only interface of the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up the loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up the loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up the loopback: %w", err)
	}
	return nil
}

// runInit is the sandbox's init in run mode: it starts the app as the image's user,
// forwards the published port to it, passes on SIGTERM and SIGINT, reaps orphans, and exits
// with the app's status. It returns only if the app cannot be started.
func runInit(spec Spec, run runChild) error {
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("changing to the working directory %q: %w", dir, err)
	}
	uid, gid, err := lookupUser(run.User)
	if err != nil {
		return err
	}
	path, err := lookPath(spec.Args[0], spec.Env)
	if err != nil {
		return err
	}
	if err := dropPrivileges(); err != nil {
		return err
	}
	listener, err := net.FileListener(os.NewFile(5, "published"))
	if err != nil {
		return fmt.Errorf("taking the published port: %w", err)
	}
	devNull, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	pid, err := syscall.ForkExec(path, spec.Args, &syscall.ProcAttr{
		Dir:   dir,
		Env:   spec.Env,
		Files: []uintptr{devNull.Fd(), 1, 2},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
			Setpgid:    true,
		},
	})
	if err != nil {
		return fmt.Errorf("starting %q as %d:%d: %w", path, uid, gid, err)
	}
	devNull.Close()
	// Setup is over: closing the error pipe tells the parent.
	unix.Close(4)

	go forward(listener, run.Port)
	go func() {
		for sig := range signals {
			_ = syscall.Kill(-pid, sig.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			os.Exit(1)
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ws.ExitStatus())
	}
}

// forward copies every connection on the host's listener to the app's port inside,
// trying IPv4 loopback first, then IPv6.
func forward(l net.Listener, port int) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var in net.Conn
			for _, addr := range []string{"127.0.0.1", "::1"} {
				if in, err = net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 2*time.Second); err == nil {
					break
				}
			}
			if in == nil {
				return
			}
			defer in.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(in, c); closeWrite(in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, in); closeWrite(c); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// lookupUser resolves "uid[:gid]" or "name[:group]" in the image's /etc/passwd and
// /etc/group. An empty user is root, as in the OCI image spec.
func lookupUser(user string) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(name); err == nil {
		uid = n
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		if f[0] == name || (uid >= 0 && f[2] == strconv.Itoa(uid)) {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			break
		}
	}
	if uid < 0 {
		return 0, 0, fmt.Errorf("the image's user %q is not in its /etc/passwd", name)
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			groups, _ := os.ReadFile("/etc/group")
			for _, line := range strings.Split(string(groups), "\n") {
				if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == group {
					gid, _ = strconv.Atoi(f[2])
				}
			}
		}
	}
	if gid < 0 {
		gid = uid
	}
	return uint32(uid), uint32(gid), nil
}

// lineBuffer keeps the last lines written to it.
type lineBuffer struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

func newLineBuffer(max int) *lineBuffer { return &lineBuffer{max: max} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, string(b.partial[:i]))
		b.partial = b.partial[i+1:]
	}
	if len(b.lines) > b.max {
		b.lines = append([]string(nil), b.lines[len(b.lines)-b.max:]...)
	}
	return len(p), nil
}

func (b *lineBuffer) last(n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := b.lines
	if len(b.partial) > 0 {
		lines = append(append([]string(nil), lines...), string(b.partial))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append([]string(nil), lines...)
}
