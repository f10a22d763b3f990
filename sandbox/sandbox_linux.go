package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Init turns this process into a sandbox's init or exec stage when it was started as one,
// and never returns then. Every main (and TestMain) that may run a sandbox calls it first.
func Init() {
	if len(os.Args) == 0 {
		return
	}
	var err error
	var setupErr uintptr
	switch os.Args[0] {
	case initArg:
		runtime.LockOSThread()
		// Whatever descriptors pyship inherited and passed on stop here: the program gets
		// only the ones given to it by name.
		closeOnExecFrom(fdSpec)
		err, setupErr = initSandbox(), fdSetupError
	case execArg:
		runtime.LockOSThread()
		closeOnExecFrom(fdStageSpec)
		err, setupErr = execStage(), fdStageSetupError
	default:
		return
	}
	fmt.Fprint(os.NewFile(setupErr, "setup-error"), err.Error())
	os.Exit(1)
}

// closeOnExecFrom marks every descriptor from first on close-on-exec.
func closeOnExecFrom(first int) {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11.
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
}

// initSandbox runs as the sandbox's first process, root in the namespaces it is in: it
// assembles the root file system, pivots into it, starts the program through the exec
// stage, and stays as its init. It returns only on failure.
func initSandbox() error {
	var spec initSpec
	if err := readSpec(fdSpec, &spec); err != nil {
		return err
	}
	unix.CloseOnExec(fdSetupError)
	unix.CloseOnExec(fdExe)

	// Nothing mounted here may reach the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := assembleRoot(spec); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting the hostname: %w", err)
		}
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := pivot(spec.Merged); err != nil {
		return err
	}
	uid, gid := uint32(0), uint32(0)
	if spec.Boot != nil {
		var err error
		if uid, gid, err = lookupUser(spec.Boot.User); err != nil {
			return err
		}
	}
	var services []func()
	if spec.Egress {
		bridge, err := egressBridge()
		if err != nil {
			return err
		}
		services = append(services, bridge)
	}
	if spec.Boot != nil {
		forwarder, err := portForwarder(spec.Boot.Port)
		if err != nil {
			return err
		}
		services = append(services, forwarder)
	}
	if err := dropPrivileges(); err != nil {
		return err
	}
	return superviseProgram(spec, uid, gid, services)
}

// assembleRoot mounts the root file system at spec.Merged: the overlay, /proc, /dev, /tmp,
// the spec's mounts and the network files, every mount point resolved inside the root.
func assembleRoot(spec initSpec) error {
	var lowers []string
	for _, l := range spec.Lowers {
		if l != "" {
			lowers = append(lowers, l)
		}
	}
	upper, work := spec.Upper, spec.Work
	tmpSize := ""
	if spec.Boot != nil {
		// The app writes to the image's file system as in a container runtime (Flask's
		// instance/, an SQLite file, ~/.cache), but its writes go to a size-capped tmpfs
		// that only the sandbox's mount namespace holds: they never reach the host's disk,
		// the layers (shared by every run) or the next run, and they are gone with the
		// sandbox's last process. Its pages count against the sandbox's memory limit.
		opts := fmt.Sprintf("mode=755,size=%d", spec.Boot.Writable)
		if err := unix.Mount("tmpfs", spec.Work, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, opts); err != nil {
			return fmt.Errorf("mounting a tmpfs for the overlay: %w", err)
		}
		upper, work = filepath.Join(spec.Work, "upper"), filepath.Join(spec.Work, "work")
		for _, d := range []string{upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		// The upper directory is the root directory the app sees: the image's root's, as
		// every extracted layer's root is.
		if err := chownToSandbox(upper, spec.Shifted); err != nil {
			return err
		}
		tmpSize = fmt.Sprintf(",size=%d", spec.Boot.Writable)
	}
	if err := mountOverlay(spec.Merged, strings.Join(lowers, ":"), upper, work); err != nil {
		return err
	}
	root, err := openRoot(spec.Merged)
	if err != nil {
		return err
	}
	root.shifted = spec.Shifted
	defer root.close()
	if err := root.mountProc(); err != nil {
		return err
	}
	if err := root.mountDev(); err != nil {
		return err
	}
	if err := root.tmpfs("/tmp", "mode=1777"+tmpSize, 0); err != nil {
		return err
	}
	for _, mt := range spec.Mounts {
		if err := root.mountOne(mt); err != nil {
			return err
		}
	}
	scratch := spec.Work
	if spec.Boot == nil {
		// The build's overlay work directory must stay empty; the files go next to it.
		scratch = filepath.Join(filepath.Dir(spec.Work), "net")
		if err := os.Mkdir(scratch, 0o755); err != nil {
			return err
		}
	}
	return networkFiles(root, scratch, spec.Hostname)
}

// keptCapabilities are what the program keeps, in its own user namespace: Docker's default
// set less CAP_MKNOD and CAP_NET_RAW. Without CAP_SYS_ADMIN it cannot mount, so it cannot
// undo the sandbox.
var keptCapabilities = map[int]bool{
	unix.CAP_CHOWN: true, unix.CAP_DAC_OVERRIDE: true, unix.CAP_FSETID: true, unix.CAP_FOWNER: true,
	unix.CAP_SETGID: true, unix.CAP_SETUID: true, unix.CAP_SETFCAP: true, unix.CAP_SETPCAP: true,
	unix.CAP_NET_BIND_SERVICE: true, unix.CAP_SYS_CHROOT: true, unix.CAP_KILL: true, unix.CAP_AUDIT_WRITE: true,
}

// dropPrivileges shrinks the capability bounding set, which the programs started later
// cannot exceed, and forbids gaining privileges through set-id files.
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

// execStage runs in the program's own user namespace, already as the program's user: it
// changes to the working directory, finds the program, installs the system call filter
// and executes it. It returns only on failure.
func execStage() error {
	var spec stageSpec
	if err := readSpec(fdStageSpec, &spec); err != nil {
		return err
	}
	unix.CloseOnExec(fdStageSetupError)
	unix.CloseOnExec(fdStageExe)
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
	// A new user namespace starts with every capability in its bounding set; root in it
	// gives the program only the kept ones. Another user has none to give.
	if os.Geteuid() == 0 {
		if err := dropPrivileges(); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	if err := installSeccomp(); err != nil {
		return err
	}
	if spec.Trace {
		if err := installTraceFilter(fdStageTrace); err != nil {
			return err
		}
	}
	return fmt.Errorf("executing %q: %w", path, unix.Exec(path, spec.Args, spec.Env))
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
	return "", fmt.Errorf("%q not found in the image (PATH=%q)", file, pathVar)
}
