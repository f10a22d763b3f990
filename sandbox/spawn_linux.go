package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The descriptors the init gets, after stdin, stdout and stderr. spawn places each by its
// constant; doc.go describes the protocol.
const (
	// fdSpec carries the initSpec, as JSON.
	fdSpec = 3
	// fdSetupError takes a setup error's text; it closes, empty, once the program runs.
	fdSetupError = 4
	// fdPublished is the host's listener of the published port (run mode).
	fdPublished = 5
	// fdEgress is where the init hands the proxy's connections to pyship (build mode).
	fdEgress = 6
	// fdExe is a sealed copy of pyship's executable, which starts the exec stage.
	fdExe = 7
	// fdTrace is a socket to pyship for the trace's listener (a traced build step).
	fdTrace = 8
)

// The descriptors the exec stage gets from the init, after stdin (/dev/null), stdout and
// stderr.
const (
	// fdStageSpec carries the stageSpec, as JSON.
	fdStageSpec = 3
	// fdStageSetupError is the init's fdSetupError, passed on: the exec stage holds it
	// until the program runs.
	fdStageSetupError = 4
	// fdStageExe is the init's fdExe, which the exec stage is started from.
	fdStageExe = 5
	// fdStageTrace is the init's fdTrace, passed on when the program is traced.
	fdStageTrace = 6
)

// initProcess is a sandbox's init, started: the one process pyship starts for a sandbox
// in either mode.
type initProcess struct {
	cmd *exec.Cmd
	cg  cgroup
	// egress is pyship's end of the socket the init hands proxy connections through.
	egress *os.File
	// setup is the init's report: empty once the program runs, else why it could not.
	setup string
	// trace is pyship's end of the trace's socket until it is served; traced closes once
	// the trace is complete (every traced process gone).
	trace  *os.File
	traced chan struct{}
}

// spawnSpec is what spawn needs: the init's spec, and what pyship hands the sandbox from
// outside in one mode or the other.
type spawnSpec struct {
	init initSpec
	// dir is a directory of the caller's for the sandbox's root (dir/merged) and the
	// overlay's work directory (dir/work).
	dir    string
	id     string
	limits Limits
	// published is the host's listener of the published port (run mode).
	published *os.File
	// egress, when set, gets a socket for the proxy's connections (build mode).
	egress *Egress
	// trace, when set, is filled by the program's trace (build mode).
	trace  *Trace
	stdout io.Writer
	stderr io.Writer
	// waitDelay bounds how long waiting for the init waits for its output once it is gone.
	waitDelay time.Duration
}

// spawn starts a sandbox's init (pyship re-executed as initArg) in new mount, pid, uts, ipc
// and network namespaces, in a cgroup of its own when pyship is root, and waits until the
// sandboxed program runs or the setup fails. When ctx ends, the init is killed, and with
// it everything in its pid namespace. The caller waits for p.cmd and calls p.close.
func spawn(ctx context.Context, ss spawnSpec) (p *initProcess, err error) {
	p = &initProcess{}
	defer func() {
		if err != nil {
			if p.cmd != nil {
				// Killing the init of a pid namespace kills everything in it.
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
				p.cmd = nil
			}
			p.close()
		}
	}()
	ss.init.Merged, ss.init.Work = filepath.Join(ss.dir, "merged"), filepath.Join(ss.dir, "work")
	for _, d := range []string{ss.init.Merged, ss.init.Work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return p, err
		}
	}
	self, err := sealedSelf()
	if err != nil {
		return p, err
	}
	data, err := json.Marshal(ss.init)
	if err != nil {
		return p, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return p, err
	}
	defer errR.Close()
	defer errW.Close()
	var egressChild, traceChild *os.File
	if ss.egress != nil {
		if p.egress, egressChild, err = socketPair("egress"); err != nil {
			return p, err
		}
		defer egressChild.Close()
	}
	if ss.trace != nil {
		if p.trace, traceChild, err = socketPair("trace"); err != nil {
			return p, err
		}
		defer traceChild.Close()
	}

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.WaitDelay = ss.waitDelay
	cmd.Args = []string{initArg}
	cmd.Env = []string{}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pipeOnly(ss.stdout), pipeOnly(ss.stderr)
	cmd.ExtraFiles = extraFiles(map[int]*os.File{
		fdSpec: specR, fdSetupError: errW, fdPublished: ss.published, fdEgress: egressChild, fdExe: self,
		fdTrace: traceChild,
	})
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if !ss.init.Shifted {
		// Without root the init needs a user namespace to make the others; the program
		// gets one more, nested (see idMaps).
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr

	if ss.init.Shifted && ss.limits != (Limits{}) {
		if p.cg, err = newCgroup(ss.id, ss.limits); err != nil {
			return p, err
		}
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES) {
			return p, &PrivilegeError{Err: err}
		}
		return p, fmt.Errorf("starting the sandbox: %w", err)
	}
	p.cmd = cmd
	specR.Close()
	errW.Close()
	if egressChild != nil {
		egressChild.Close()
	}
	if traceChild != nil {
		// The exec stage stops at the program's execve until the trace is served.
		traceChild.Close()
		sock := p.trace
		p.trace, p.traced = nil, make(chan struct{})
		go func() {
			defer close(p.traced)
			receiveTrace(sock, ss.trace)
		}()
	}
	// The init waits for its spec, so it is in the cgroup before anything runs.
	if p.cg != nil {
		if err := p.cg.add(cmd.Process.Pid); err != nil {
			return p, fmt.Errorf("adding the sandbox to its cgroup: %w", err)
		}
	}
	if _, err := specW.Write(data); err != nil {
		return p, fmt.Errorf("starting the sandbox: %w", err)
	}
	specW.Close()
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
	p.setup = string(msg)
	return p, nil
}

// socketPair makes a connected pair of packet sockets, pyship's end and the sandbox's,
// both close-on-exec (the sandbox's is passed by number).
func socketPair(name string) (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("making the %s socket: %w", name, err)
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name), nil
}

// extraFiles lays out files, keyed by the descriptor each is to be in the child, as
// exec.Cmd.ExtraFiles wants them: entry i becomes descriptor 3+i. A nil file, or a gap,
// leaves that descriptor closed.
func extraFiles(byFd map[int]*os.File) []*os.File {
	var files []*os.File
	for fd, f := range byFd {
		for len(files) <= fd-3 {
			files = append(files, nil)
		}
		files[fd-3] = f
	}
	return files
}

// close kills what is left of the sandbox and removes its cgroup, once its usage is read.
func (p *initProcess) close() {
	if p.egress != nil {
		p.egress.Close()
	}
	if p.trace != nil {
		p.trace.Close()
	}
	if p.cg == nil {
		return
	}
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

// pipeOnly makes sure the sandbox writes to a pipe: a *os.File (a terminal, say) would be
// handed to it as it is.
func pipeOnly(w io.Writer) io.Writer {
	if _, ok := w.(*os.File); ok {
		return struct{ io.Writer }{w}
	}
	return w
}

var self struct {
	once sync.Once
	f    *os.File
	err  error
}

// sealedSelf is a copy of pyship's executable in a sealed memory file. The exec stage
// runs from it: the sandbox's users may have no right to read the installed binary, and
// nothing in a sandbox can change a sealed file (runc does the same since CVE-2019-5736).
func sealedSelf() (*os.File, error) {
	self.once.Do(func() {
		self.f, self.err = copySelf()
	})
	return self.f, self.err
}

func copySelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("reading pyship's executable: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("pyship-sandbox", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("copying pyship's executable: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pyship-sandbox")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying pyship's executable: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing the copy of pyship's executable: %w", err)
	}
	return f, nil
}

// setupError makes the init's report into an error.
func setupError(msg string) error {
	if strings.Contains(msg, "operation not permitted") && os.Geteuid() != 0 {
		return &PrivilegeError{Err: errors.New(msg)}
	}
	return &SetupError{Msg: msg}
}

// exitCode is the status the init exited with, from what waiting for it returned: the
// program's, 128+N when a signal N killed it. ok is false when err is no exit status.
func exitCode(err error) (code int, ok bool) {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return 0, false
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return exit.ExitCode(), true
}
