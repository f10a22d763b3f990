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
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Init turns this process into a sandbox's first process when it was started as one by
// Run, and never returns then. Every main (and TestMain) that may run a sandbox calls it
// first.
func Init() {
	if len(os.Args) == 0 || os.Args[0] != initArg {
		return
	}
	runtime.LockOSThread()
	errPipe := os.NewFile(4, "errors")
	err := setupAndExec()
	fmt.Fprint(errPipe, err.Error())
	os.Exit(1)
}

// Run runs spec.Args in a new mount, pid, uts and ipc namespace whose root is spec.Root
// with an overlay that sends writes to spec.Upper. The network is the host's. Everything the
// sandbox mounts lives in its own mount namespace and goes away with its last process; when
// ctx ends, the whole pid namespace is killed.
func Run(ctx context.Context, spec Spec) error {
	if len(spec.Args) == 0 {
		return errors.New("sandbox: no command")
	}
	tmp, err := os.MkdirTemp(filepath.Dir(spec.Upper), ".sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	child := childSpec{Spec: spec, Merged: filepath.Join(tmp, "merged"), Work: filepath.Join(tmp, "work")}
	for _, d := range []string{child.Merged, child.Work, spec.Upper} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	data, err := json.Marshal(child)
	if err != nil {
		return err
	}

	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer errR.Close()
	defer errW.Close()

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initArg}
	cmd.Env = []string{}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	cmd.ExtraFiles = []*os.File{specR, errW}
	cmd.WaitDelay = 5 * time.Second
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES) {
			return &PrivilegeError{Err: err}
		}
		return fmt.Errorf("starting the sandbox: %w", err)
	}
	specR.Close()
	errW.Close()
	if _, err := specW.Write(data); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("starting the sandbox: %w", err)
	}
	specW.Close()

	setupMsg, _ := io.ReadAll(errR)
	waitErr := cmd.Wait()
	if len(setupMsg) > 0 {
		msg := string(setupMsg)
		if strings.Contains(msg, "operation not permitted") && os.Geteuid() != 0 {
			return &PrivilegeError{Err: errors.New(msg)}
		}
		return &SetupError{Msg: msg}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		code := exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &ExitError{Args: spec.Args, Code: code}
	}
	return waitErr
}

// setupAndExec runs inside the new namespaces: it assembles the root file system, pivots
// into it and executes the command. It returns only on failure.
func setupAndExec() error {
	specFile := os.NewFile(3, "spec")
	var child childSpec
	if err := json.NewDecoder(specFile).Decode(&child); err != nil {
		return fmt.Errorf("reading the sandbox spec: %w", err)
	}
	spec := child.Spec
	specFile.Close()
	unix.CloseOnExec(4)

	// Nothing mounted here may reach the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	m := child.Merged
	var lowers []string
	for _, l := range append(append([]string(nil), spec.Over...), spec.Root) {
		if l != "" {
			lowers = append(lowers, l)
		}
	}
	upper, work := spec.Upper, child.Work
	if child.Run != nil {
		// The image's file system takes no writes: the overlay's upper directory is a tmpfs
		// that goes with the sandbox, only there to hold mount points; the root is made
		// read-only once they exist.
		if err := mountTmpfs(child.Work, "mode=755", 0); err != nil {
			return err
		}
		upper, work = filepath.Join(child.Work, "upper"), filepath.Join(child.Work, "work")
		for _, d := range []string{upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
	}
	if err := mountOverlay(m, strings.Join(lowers, ":"), upper, work); err != nil {
		return err
	}
	if err := mountProc(m); err != nil {
		return err
	}
	if err := mountDev(m); err != nil {
		return err
	}
	if err := mountTmpfs(filepath.Join(m, "tmp"), "mode=1777", 0); err != nil {
		return err
	}
	for _, mt := range spec.Mounts {
		if err := mountOne(m, mt); err != nil {
			return err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting the hostname: %w", err)
		}
	}
	if child.Run != nil {
		if err := networkFiles(m, child.Work, spec.Hostname); err != nil {
			return err
		}
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := pivot(m); err != nil {
		return err
	}
	if child.Run != nil {
		return runInit(spec, *child.Run)
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("changing to the working directory %q: %w", dir, err)
	}
	path, err := lookPath(spec.Args[0], spec.Env)
	if err != nil {
		return err
	}
	if err := dropPrivileges(); err != nil {
		return err
	}
	return fmt.Errorf("executing %q: %w", path, unix.Exec(path, spec.Args, spec.Env))
}

// keptCapabilities are what the command keeps: Docker's default set less CAP_MKNOD and
// CAP_NET_RAW. Without CAP_SYS_ADMIN it cannot mount, so it cannot undo the sandbox.
var keptCapabilities = map[int]bool{
	unix.CAP_CHOWN: true, unix.CAP_DAC_OVERRIDE: true, unix.CAP_FSETID: true, unix.CAP_FOWNER: true,
	unix.CAP_SETGID: true, unix.CAP_SETUID: true, unix.CAP_SETFCAP: true, unix.CAP_SETPCAP: true,
	unix.CAP_NET_BIND_SERVICE: true, unix.CAP_SYS_CHROOT: true, unix.CAP_KILL: true, unix.CAP_AUDIT_WRITE: true,
}

// dropPrivileges shrinks the capability bounding set, which the exec'd command's
// capabilities cannot exceed, and forbids gaining privileges through set-id files.
func dropPrivileges() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if keptCapabilities[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}

// mountOverlay mounts an overlay; lower may stack directories with ":".
func mountOverlay(target, lower, upper, work string) error {
	for _, p := range append(strings.Split(lower, ":"), upper, work) {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("path %q contains a comma or colon, which overlayfs cannot take; set PYSHIP_CACHE_DIR to a plainer path", p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting an overlay of %s on %s: %w", lower, target, err)
	}
	return nil
}

func mountProc(root string) error {
	target := filepath.Join(root, "proc")
	if err := os.MkdirAll(target, 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	return nil
}

// mountDev gives the sandbox a minimal /dev: the harmless character devices bound from the
// host, the usual links, and a tmpfs /dev/shm.
func mountDev(root string) error {
	dev := filepath.Join(root, "dev")
	if err := mountTmpfs(dev, "mode=755", unix.MS_NOSUID|unix.MS_NOEXEC); err != nil {
		return err
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := mountOne(root, Mount{Type: "bind", Source: "/dev/" + name, Target: "/dev/" + name}); err != nil {
			return err
		}
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return mountTmpfs(filepath.Join(dev, "shm"), "mode=1777", unix.MS_NOSUID|unix.MS_NODEV)
}

func mountTmpfs(target, data string, flags uintptr) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", target, err)
	}
	return nil
}

// mountOne mounts mt under root, creating the mount point (a file for a file, a
// directory otherwise).
func mountOne(root string, mt Mount) error {
	target := filepath.Join(root, filepath.Clean("/"+mt.Target))
	switch mt.Type {
	case "tmpfs":
		return mountTmpfs(target, "mode=755", unix.MS_NOSUID|unix.MS_NODEV)
	case "overlay":
		upper, work := filepath.Join(mt.Scratch, "upper"), filepath.Join(mt.Scratch, "work")
		for _, d := range []string{upper, work, target} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		return mountOverlay(target, mt.Source, upper, work)
	case "bind":
		info, err := os.Stat(mt.Source)
		if err != nil {
			return fmt.Errorf("bind mount source: %w", err)
		}
		if info.IsDir() {
			err = os.MkdirAll(target, 0o755)
		} else {
			err = touch(target)
		}
		if err != nil {
			return fmt.Errorf("making mount point %s: %w", mt.Target, err)
		}
		if err := unix.Mount(mt.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s to %s: %w", mt.Source, mt.Target, err)
		}
		if mt.ReadOnly {
			flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
			if err := unix.Mount("", target, "", flags, ""); err != nil {
				return fmt.Errorf("making %s read-only: %w", mt.Target, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown mount type %q", mt.Type)
	}
}

func touch(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		// An image may have a symbolic link here (/etc/resolv.conf often is one): replace it
		// in the overlay so the bind lands inside the root, never on a host path.
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// pivot makes root the root of the mount namespace and detaches the old root, so the host's
// file systems are no longer reachable.
func pivot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return unix.Chdir("/")
}

// lookPath finds file in the PATH of env, inside the sandbox's root.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := filepath.Join(dir, file)
		if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the image (PATH=%s)", file, pathVar)
}
