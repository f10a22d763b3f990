package sandbox

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readSpec decodes what the parent sent on fd: fdSpec in the init, fdStageSpec in the
// exec stage.
func readSpec(fd uintptr, v any) error {
	f := os.NewFile(fd, "spec")
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("reading the sandbox spec: %w", err)
	}
	return nil
}

// superviseProgram starts the program through the exec stage, in a user namespace of its
// own as uid:gid and a session of its own with stdin on /dev/null, runs the services (the
// published port, the proxy), passes SIGTERM and SIGINT on, reaps orphans, and exits with
// the program's status. It returns only if the program cannot be started.
func superviseProgram(spec initSpec, uid, gid uint32, services []func()) error {
	devNull, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	uids, gids := idMaps(spec.Shifted, uid, gid)
	// Each descriptor of the exec stage, by its number there.
	files := make([]uintptr, fdStageExe+1)
	if spec.Trace {
		files = make([]uintptr, fdStageTrace+1)
		files[fdStageTrace] = fdTrace
	}
	files[unix.Stdin], files[unix.Stdout], files[unix.Stderr] = devNull.Fd(), uintptr(unix.Stdout), uintptr(unix.Stderr)
	files[fdStageSpec], files[fdStageSetupError], files[fdStageExe] = specR.Fd(), fdSetupError, fdExe
	// The path names fdStageExe as the exec stage holds it, once its descriptors are laid out.
	pid, err := syscall.ForkExec(fdPath(fdStageExe), []string{execArg}, &syscall.ProcAttr{
		Env:   []string{},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_NEWUSER,
			UidMappings:                uids,
			GidMappings:                gids,
			GidMappingsEnableSetgroups: spec.Shifted,
			Credential:                 &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}, NoSetGroups: !spec.Shifted},
			Setsid:                     true,
			Pdeathsig:                  syscall.SIGKILL,
		},
	})
	devNull.Close()
	specR.Close()
	if err != nil {
		if interp := dynamicLoader(fdExe); interp != "" && errors.Is(err, unix.ENOENT) {
			// pyship itself, which starts the program from inside the image, was
			// linked against a C library the image does not have.
			return fmt.Errorf("starting %q: this pyship is dynamically linked (it needs %s, which the image does not have); use a static pyship: the released binaries, or one built with CGO_ENABLED=0", spec.Args[0], interp)
		}
		return fmt.Errorf("starting %q as %d:%d: %w", spec.Args[0], uid, gid, err)
	}
	err = json.NewEncoder(specW).Encode(stageSpec{Args: spec.Args, Env: spec.Env, Dir: spec.Dir, Trace: spec.Trace})
	specW.Close()
	if err != nil {
		return fmt.Errorf("starting %q: %w", spec.Args[0], err)
	}
	// The exec stage holds the error pipe until the program runs; the init lets go of it,
	// and of the trace's socket.
	unix.Close(fdSetupError)
	if spec.Trace {
		unix.Close(fdTrace)
	}

	for _, s := range services {
		go s()
	}
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

// networkFiles gives the sandbox /etc/hosts and /etc/resolv.conf of its own, written in
// scratch.
func networkFiles(root rootDir, scratch, hostname string) error {
	files := map[string]string{
		"hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n",
		"resolv.conf": "# pyship: the sandbox has no network beyond its own loopback (and pyship's proxy in a build)\n",
	}
	for name, content := range files {
		src := scratch + "/" + name
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			return err
		}
		if err := root.mountOne(Mount{Type: "bind", Source: src, Target: "/etc/" + name, ReadOnly: true}); err != nil {
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

// portForwarder takes the host's listener of the published port and returns the service
// that copies every connection on it to the app's port inside, trying IPv4 loopback
// first, then IPv6.
func portForwarder(port int) (func(), error) {
	l, err := net.FileListener(os.NewFile(fdPublished, "published"))
	if err != nil {
		return nil, fmt.Errorf("taking the published port: %w", err)
	}
	return func() {
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
				splice(c, in)
			}()
		}
	}, nil
}

// splice copies both ways until both sides are done.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, a); closeWrite(b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(a, b); closeWrite(a); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
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
	passwd, _ := readImageFile("/etc/passwd")
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
			groups, _ := readImageFile("/etc/group")
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
	if uid >= idCount || gid >= idCount {
		return 0, 0, fmt.Errorf("the image's user %q is %d:%d; the sandbox maps ids below %d", user, uid, gid, idCount)
	}
	return uint32(uid), uint32(gid), nil
}

// readImageFile reads a small regular file of the image, never blocking on a FIFO or
// reading a device.
func readImageFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the image is not a regular file", p)
	}
	var b bytes.Buffer
	_, err = io.Copy(&b, io.LimitReader(f, 1<<20))
	return b.Bytes(), err
}

// dynamicLoader returns the program interpreter (the dynamic loader) the executable open
// at fd asks for, or "" for a static one.
func dynamicLoader(fd int) string {
	f, err := elf.NewFile(io.NewSectionReader(fdReaderAt(fd), 0, 1<<40))
	if err != nil {
		return ""
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, min(p.Filesz, 4096))
			if _, err := p.ReadAt(b, 0); err != nil {
				return ""
			}
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}

// fdReaderAt reads the open file fd without moving its offset.
type fdReaderAt int

func (fd fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(fd), p, off)
	if n == 0 && err == nil && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}
