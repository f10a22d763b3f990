package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	if err := os.MkdirAll(spec.Upper, 0o755); err != nil {
		return err
	}
	if err := chownToSandbox(spec.Upper, shifted); err != nil {
		return err
	}
	ispec := initSpec{
		Lowers: append(append([]string(nil), spec.Over...), spec.Root), Upper: spec.Upper,
		Args: spec.Args, Env: spec.Env, Dir: spec.Dir, Hostname: spec.Hostname, Mounts: spec.Mounts,
		Shifted: shifted, Egress: spec.Egress != nil, Trace: spec.Trace != nil,
	}
	if spec.Egress != nil {
		ispec.Env = withProxy(ispec.Env)
	}
	p, err := spawn(ctx, spawnSpec{
		init: ispec, dir: tmp, id: newID(), limits: spec.Limits, egress: spec.Egress,
		stdout: spec.Stdout, stderr: spec.Stderr, waitDelay: 5 * time.Second, trace: spec.Trace,
	})
	defer p.close()
	if err != nil {
		return err
	}
	if p.egress != nil {
		fc, err := net.FileConn(p.egress)
		if err != nil {
			return fmt.Errorf("serving the sandbox's proxy: %w", err)
		}
		go serveEgress(fc.(*net.UnixConn), spec.Egress)
	}
	waitErr := p.cmd.Wait()
	if p.traced != nil {
		// The init is gone, and with it every process of its pid namespace.
		select {
		case <-p.traced:
		case <-time.After(5 * time.Second):
			spec.Trace.miss("the trace did not end with the program")
		}
	}
	if p.setup != "" {
		return setupError(p.setup)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if code, ok := exitCode(waitErr); ok {
		e := &ExitError{Args: spec.Args, Code: code}
		if p.cg != nil {
			if u, err := p.cg.stats(); err == nil && u.OOMKills > 0 {
				e.OutOfMemory, e.MemoryLimit = true, spec.Limits.Memory
			}
		}
		return e
	}
	return waitErr
}
