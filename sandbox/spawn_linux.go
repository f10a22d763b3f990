package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The descriptors a sandbox's init gets, after stdin, stdout and stderr.
const (
	// fdSpec carries the initSpec, as JSON; in the exec stage, the stageSpec.
	fdSpec = 3 + iota
	// fdErrors takes a setup error's text; it closes, empty, once the program runs.
	fdErrors
	// fdPublished is the host's listener of the published port (run mode).
	fdPublished
	// fdEgress is where the init hands the proxy's connections to pyship (build mode).
	fdEgress
	// fdSelf is a sealed copy of pyship's executable, which starts the exec stage.
	fdSelf
)

// execSelf is the descriptor the exec stage is started from, in its own numbering.
const execSelf = fdErrors + 1

// launch is a sandbox's init, started.
type launch struct {
	cmd *exec.Cmd
	cg  cgroup
	// egress is pyship's end of the socket the init hands proxy connections through.
	egress *os.File
	// setup is the init's report: empty once the program runs, else why it could not.
	setup string
}

// launchSpec is what start needs.
type launchSpec struct {
	child     initSpec
	id        string
	limits    Limits
	published *os.File
	egress    *Egress
	stdout    io.Writer
	stderr    io.Writer
	// cmd makes the command, so that Exec can tie it to a context.
	cmd func() *exec.Cmd
}

// start starts a sandbox's init in new mount, pid, uts, ipc and network namespaces, in a
// cgroup of its own when pyship is root, and waits until the sandboxed program runs or
// the setup fails. The caller waits for l.cmd and calls l.close.
func start(ls launchSpec) (l *launch, err error) {
	l = &launch{}
	defer func() {
		if err != nil {
			if l.cmd != nil {
				// Killing the init of a pid namespace kills everything in it.
				_ = l.cmd.Process.Kill()
				_ = l.cmd.Wait()
				l.cmd = nil
			}
			l.close()
		}
	}()
	self, err := sealedSelf()
	if err != nil {
		return l, err
	}
	data, err := json.Marshal(ls.child)
	if err != nil {
		return l, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return l, err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return l, err
	}
	defer errR.Close()
	defer errW.Close()
	var egressChild *os.File
	if ls.egress != nil {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return l, fmt.Errorf("making the egress socket: %w", err)
		}
		l.egress = os.NewFile(uintptr(fds[0]), "egress")
		egressChild = os.NewFile(uintptr(fds[1]), "egress")
		defer egressChild.Close()
	}

	cmd := ls.cmd()
	cmd.Args = []string{initArg}
	cmd.Env = []string{}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pipeOnly(ls.stdout), pipeOnly(ls.stderr)
	cmd.ExtraFiles = []*os.File{specR, errW, ls.published, egressChild, self}
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if !ls.child.Shifted {
		// Without root the init needs a user namespace to make the others; the program
		// gets one more, nested (see idMaps).
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr

	if ls.child.Shifted && ls.limits != (Limits{}) {
		if l.cg, err = newCgroup(ls.id, ls.limits); err != nil {
			return l, err
		}
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES) {
			return l, &PrivilegeError{Err: err}
		}
		return l, fmt.Errorf("starting the sandbox: %w", err)
	}
	l.cmd = cmd
	specR.Close()
	errW.Close()
	if egressChild != nil {
		egressChild.Close()
	}
	// The init waits for its spec, so it is in the cgroup before anything runs.
	if l.cg != nil {
		if err := l.cg.add(cmd.Process.Pid); err != nil {
			return l, fmt.Errorf("adding the sandbox to its cgroup: %w", err)
		}
	}
	if _, err := specW.Write(data); err != nil {
		return l, fmt.Errorf("starting the sandbox: %w", err)
	}
	specW.Close()
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
	l.setup = string(msg)
	return l, nil
}

// close kills what is left of the sandbox and removes its cgroup, once its usage is read.
func (l *launch) close() {
	if l.egress != nil {
		l.egress.Close()
	}
	if l.cg == nil {
		return
	}
	// The kernel frees a cgroup only once its last process is gone; that takes a moment
	// after the kill.
	for i := 0; i < 50; i++ {
		if err := l.cg.delete(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.cg = nil
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
