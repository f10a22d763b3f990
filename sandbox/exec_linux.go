package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Exec runs spec.Args in a sandbox (build mode), as a Dockerfile's RUN runs a command:
// new mount, pid, uts, ipc and network namespaces; a root file system that is spec.Root with an overlay sending writes to
// spec.Upper; a user namespace in which root is an unprivileged host user; a system call
// filter; a cgroup with spec.Limits; the network only through pyship's proxy, and only
// with spec.Egress. Everything the sandbox mounts lives in its own mount namespace and
// goes away with its last process; when ctx ends, the whole pid namespace is killed.
func Exec(ctx context.Context, spec ExecSpec) error {
	if len(spec.Args) == 0 {
		return errors.New("sandbox: no command")
	}
	if spec.Limits == (Limits{}) {
		spec.Limits = DefaultBuildLimits
	}
	CleanLeftovers()
	shifted := os.Geteuid() == 0
	tmp, err := os.MkdirTemp(filepath.Dir(spec.Upper), ".sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	child := initSpec{Spec: spec, Merged: filepath.Join(tmp, "merged"), Work: filepath.Join(tmp, "work"), Shifted: shifted, Egress: spec.Egress != nil}
	for _, d := range []string{child.Merged, child.Work, spec.Upper} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := chownToSandbox(spec.Upper, shifted); err != nil {
		return err
	}
	if spec.Egress != nil {
		child.Spec.Env = withProxy(child.Spec.Env)
	}
	l, err := start(launchSpec{
		child: child, id: newID(), limits: spec.Limits, egress: spec.Egress,
		stdout: spec.Stdout, stderr: spec.Stderr,
		cmd: func() *exec.Cmd {
			cmd := exec.CommandContext(ctx, "/proc/self/exe")
			cmd.WaitDelay = 5 * time.Second
			return cmd
		},
	})
	defer l.close()
	if err != nil {
		return err
	}
	if l.egress != nil {
		fc, err := net.FileConn(l.egress)
		if err != nil {
			return fmt.Errorf("serving the sandbox's proxy: %w", err)
		}
		go serveEgress(fc.(*net.UnixConn), spec.Egress)
	}
	waitErr := l.cmd.Wait()
	if l.setup != "" {
		return setupError(l.setup)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		e := &ExitError{Args: spec.Args, Code: exitErr.ExitCode()}
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Code = 128 + int(ws.Signal())
		}
		if l.cg != nil {
			if u, err := l.cg.stats(); err == nil && u.OOMKills > 0 {
				e.OutOfMemory, e.MemoryLimit = true, spec.Limits.Memory
			}
		}
		return e
	}
	return waitErr
}
