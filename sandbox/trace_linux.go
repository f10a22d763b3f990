//go:build linux && (amd64 || arm64)

package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A traced program runs under a second system call filter: the calls in quietSyscalls,
// which name no path, pass; every other call stops until pyship has looked at it through
// the filter's listener (seccomp user notification) and lets it go on unchanged. pyship
// reads the path a call names out of the program's memory, makes it absolute against the
// directory it is relative to, and records it. A call it does not know to be free of paths
// leaves the trace incomplete, as does a path through /proc's links to other files.
//
// The trace only watches: the call the program made is the call that runs (the program
// could change the path after pyship read it, which only ever hides its own reads from
// its own cache). The first filter still refuses what it refuses.

// pathArgs says where a system call's paths are: the argument holding a path, and the one
// holding the directory descriptor it is relative to (-1: the working directory), for up
// to two paths.
type pathArgs struct {
	dirfd, path   int
	dirfd2, path2 int
	// names says the first path gets a second name (rename, link), so that what the
	// program reads under the second name may be an input's.
	names bool
	// link says the call makes a symbolic link at path2 (its first argument is the link's
	// text, not a path that is looked up).
	link bool
}

func onePath(dirfd, path int) pathArgs {
	return pathArgs{dirfd: dirfd, path: path, dirfd2: -1, path2: -1}
}

// commonPathSyscalls are the calls that name paths on every architecture.
var commonPathSyscalls = map[uintptr]pathArgs{
	unix.SYS_OPENAT:            onePath(0, 1),
	unix.SYS_NEWFSTATAT:        onePath(0, 1),
	unix.SYS_STATX:             onePath(0, 1),
	unix.SYS_FACCESSAT:         onePath(0, 1),
	unix.SYS_FACCESSAT2:        onePath(0, 1),
	unix.SYS_READLINKAT:        onePath(0, 1),
	unix.SYS_MKDIRAT:           onePath(0, 1),
	unix.SYS_MKNODAT:           onePath(0, 1),
	unix.SYS_UNLINKAT:          onePath(0, 1),
	unix.SYS_FCHMODAT:          onePath(0, 1),
	unix.SYS_FCHMODAT2:         onePath(0, 1),
	unix.SYS_FCHOWNAT:          onePath(0, 1),
	unix.SYS_UTIMENSAT:         onePath(0, 1),
	unix.SYS_EXECVEAT:          onePath(0, 1),
	unix.SYS_EXECVE:            onePath(-1, 0),
	unix.SYS_CHDIR:             onePath(-1, 0),
	unix.SYS_TRUNCATE:          onePath(-1, 0),
	unix.SYS_STATFS:            onePath(-1, 0),
	unix.SYS_GETXATTR:          onePath(-1, 0),
	unix.SYS_LGETXATTR:         onePath(-1, 0),
	unix.SYS_LISTXATTR:         onePath(-1, 0),
	unix.SYS_LLISTXATTR:        onePath(-1, 0),
	unix.SYS_SETXATTR:          onePath(-1, 0),
	unix.SYS_LSETXATTR:         onePath(-1, 0),
	unix.SYS_REMOVEXATTR:       onePath(-1, 0),
	unix.SYS_LREMOVEXATTR:      onePath(-1, 0),
	unix.SYS_INOTIFY_ADD_WATCH: onePath(-1, 1),
	unix.SYS_RENAMEAT2:         {dirfd: 0, path: 1, dirfd2: 2, path2: 3, names: true},
	unix.SYS_LINKAT:            {dirfd: 0, path: 1, dirfd2: 2, path2: 3, names: true},
	unix.SYS_SYMLINKAT:         {dirfd: -1, path: -1, dirfd2: 1, path2: 2, link: true},
}

// commonQuietSyscalls name no path and pass a traced program's filter at once, on every
// architecture. Descriptor calls need no trace: the descriptor was opened by a path.
var commonQuietSyscalls = []uintptr{
	unix.SYS_READ, unix.SYS_WRITE, unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREAD64, unix.SYS_PWRITE64,
	unix.SYS_PREADV, unix.SYS_PWRITEV, unix.SYS_PREADV2, unix.SYS_PWRITEV2, unix.SYS_CLOSE, unix.SYS_CLOSE_RANGE,
	unix.SYS_FSTAT, unix.SYS_LSEEK, unix.SYS_MMAP, unix.SYS_MPROTECT, unix.SYS_MUNMAP, unix.SYS_MREMAP,
	unix.SYS_MADVISE, unix.SYS_BRK, unix.SYS_MSYNC, unix.SYS_MINCORE, unix.SYS_MLOCK, unix.SYS_MUNLOCK,
	unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGRETURN, unix.SYS_RT_SIGSUSPEND,
	unix.SYS_RT_SIGTIMEDWAIT, unix.SYS_RT_SIGQUEUEINFO, unix.SYS_SIGALTSTACK, unix.SYS_IOCTL,
	unix.SYS_FUTEX, unix.SYS_FUTEX_WAITV, unix.SYS_SET_ROBUST_LIST, unix.SYS_GET_ROBUST_LIST, unix.SYS_RSEQ,
	unix.SYS_SET_TID_ADDRESS, unix.SYS_GETDENTS64, unix.SYS_FCNTL, unix.SYS_FLOCK, unix.SYS_FSYNC,
	unix.SYS_FDATASYNC, unix.SYS_FTRUNCATE, unix.SYS_FALLOCATE, unix.SYS_FCHMOD, unix.SYS_FCHOWN,
	unix.SYS_FCHDIR, unix.SYS_FSTATFS, unix.SYS_FADVISE64, unix.SYS_READAHEAD, unix.SYS_SYNC,
	unix.SYS_SYNCFS, unix.SYS_SYNC_FILE_RANGE, unix.SYS_COPY_FILE_RANGE, unix.SYS_SENDFILE,
	unix.SYS_SPLICE, unix.SYS_TEE, unix.SYS_DUP, unix.SYS_DUP3, unix.SYS_PIPE2, unix.SYS_GETCWD,
	unix.SYS_FGETXATTR, unix.SYS_FLISTXATTR, unix.SYS_FSETXATTR, unix.SYS_FREMOVEXATTR,
	unix.SYS_GETPID, unix.SYS_GETPPID, unix.SYS_GETTID, unix.SYS_GETUID, unix.SYS_GETEUID,
	unix.SYS_GETGID, unix.SYS_GETEGID, unix.SYS_GETGROUPS, unix.SYS_GETRESUID, unix.SYS_GETRESGID,
	unix.SYS_GETPGID, unix.SYS_GETSID, unix.SYS_SETSID, unix.SYS_SETPGID, unix.SYS_SETUID, unix.SYS_SETGID,
	unix.SYS_SETREUID, unix.SYS_SETREGID, unix.SYS_SETRESUID, unix.SYS_SETRESGID, unix.SYS_SETGROUPS,
	unix.SYS_CAPGET, unix.SYS_CAPSET, unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_GETRES,
	unix.SYS_CLOCK_NANOSLEEP, unix.SYS_NANOSLEEP, unix.SYS_GETTIMEOFDAY, unix.SYS_TIMES,
	unix.SYS_GETITIMER, unix.SYS_SETITIMER, unix.SYS_SCHED_YIELD, unix.SYS_SCHED_GETAFFINITY,
	unix.SYS_SCHED_SETAFFINITY, unix.SYS_SCHED_GETPARAM, unix.SYS_SCHED_GETSCHEDULER, unix.SYS_GETCPU,
	unix.SYS_GETRANDOM, unix.SYS_PRLIMIT64, unix.SYS_GETRUSAGE, unix.SYS_UNAME, unix.SYS_SYSINFO,
	unix.SYS_UMASK, unix.SYS_PRCTL, unix.SYS_GETPRIORITY, unix.SYS_SETPRIORITY, unix.SYS_EXIT,
	unix.SYS_EXIT_GROUP, unix.SYS_WAIT4, unix.SYS_WAITID, unix.SYS_KILL, unix.SYS_TGKILL, unix.SYS_TKILL,
	unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_CONNECT, unix.SYS_BIND,
	unix.SYS_LISTEN, unix.SYS_ACCEPT, unix.SYS_ACCEPT4, unix.SYS_SENDTO, unix.SYS_RECVFROM, unix.SYS_SENDMSG,
	unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG, unix.SYS_SHUTDOWN, unix.SYS_GETSOCKNAME,
	unix.SYS_GETPEERNAME, unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKOPT, unix.SYS_EPOLL_CREATE1,
	unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2, unix.SYS_PPOLL, unix.SYS_PSELECT6,
	unix.SYS_EVENTFD2, unix.SYS_SIGNALFD4, unix.SYS_TIMERFD_CREATE, unix.SYS_TIMERFD_SETTIME,
	unix.SYS_TIMERFD_GETTIME, unix.SYS_MEMFD_CREATE, unix.SYS_MEMBARRIER, unix.SYS_PIDFD_OPEN,
	unix.SYS_PIDFD_SEND_SIGNAL, unix.SYS_INOTIFY_INIT1, unix.SYS_INOTIFY_RM_WATCH, unix.SYS_RESTART_SYSCALL,
	unix.SYS_GET_MEMPOLICY, unix.SYS_SET_MEMPOLICY, unix.SYS_MBIND, unix.SYS_SHMGET, unix.SYS_SHMAT,
	unix.SYS_SHMDT, unix.SYS_SHMCTL, unix.SYS_SEMGET, unix.SYS_SEMOP, unix.SYS_SEMCTL, unix.SYS_SEMTIMEDOP,
	unix.SYS_TIMER_CREATE, unix.SYS_TIMER_SETTIME, unix.SYS_TIMER_GETTIME, unix.SYS_TIMER_DELETE,
	unix.SYS_TIMER_GETOVERRUN, unix.SYS_IO_SETUP, unix.SYS_IO_SUBMIT, unix.SYS_IO_GETEVENTS,
	unix.SYS_IO_DESTROY, unix.SYS_IO_CANCEL, unix.SYS_PERSONALITY,
}

// traceFilter is the traced program's second filter: quiet calls pass, everything else
// goes to pyship.
func traceFilter() ([]unix.SockFilter, error) {
	var f bpfProgram
	f.load(seccompNr)
	for _, nr := range append(append([]uintptr(nil), commonQuietSyscalls...), archQuietSyscalls...) {
		f.jumpIf(uint32(nr), "allow")
	}
	f.ret(unix.SECCOMP_RET_USER_NOTIF)
	f.label("allow")
	f.ret(unix.SECCOMP_RET_ALLOW)
	return f.assemble()
}

// installTraceFilter installs the trace filter on the calling thread and sends its
// listener to pyship over the socket sock. It runs after installSeccomp, just before the
// program is executed: from here on, the thread's calls outside quietSyscalls wait for
// pyship.
func installTraceFilter(sock int) error {
	defer unix.Close(sock)
	if !kernelAtLeast(5, 8) {
		// Before Linux 5.5 pyship could not let a call go on (SECCOMP_USER_NOTIF_FLAG_CONTINUE);
		// before 5.8 the listener does not say when no process is left under its filter.
		return unix.Sendmsg(sock, []byte("untraced: the kernel is older than Linux 5.8"), nil, nil, 0)
	}
	prog, err := traceFilter()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		// The kernel cannot trace: pyship runs the program untraced.
		_ = unix.Sendmsg(sock, []byte("untraced: "+errno.Error()), nil, nil, 0)
		return nil
	}
	err = unix.Sendmsg(sock, []byte("listener"), unix.UnixRights(int(fd)), nil, 0)
	unix.Close(int(fd))
	if err != nil {
		return fmt.Errorf("handing the trace to pyship: %w", err)
	}
	return nil
}

// seccompNotif is the kernel's struct seccomp_notif.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

// seccompNotifResp is the kernel's struct seccomp_notif_resp.
type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// receiveTrace takes the listener from the exec stage over sock and serves it until the
// program and its children are gone, recording into t. It closes sock.
func receiveTrace(sock *os.File, t *Trace) {
	defer sock.Close()
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		t.miss("the program did not start under the trace")
		return
	}
	if msg := string(buf[:n]); msg != "listener" {
		t.miss(msg)
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.miss("no trace listener came")
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.miss("no trace listener came")
		return
	}
	listener := fds[0]
	defer unix.Close(listener)
	serveTrace(listener, t)
}

// traceWaitsInPoll makes the trace wait in poll on every kernel, as it does before Linux
// 6.11 (for tests).
var traceWaitsInPoll bool

// serveTrace answers the listener's notifications until no process uses the filter.
func serveTrace(listener int, t *Trace) {
	// The program waits on every call it makes: this thread answers it and nothing else,
	// woken on the program's own CPU where the kernel can (Linux 6.6). From Linux 6.11 a
	// waiting NOTIF_RECV also returns once no process is left under the filter, so the
	// thread waits in it directly (7 µs a call here, against 10 to 14 through poll);
	// before, it waits in poll for POLLIN or POLLHUP.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	direct := errno == 0 && kernelAtLeast(6, 11) && !traceWaitsInPoll
	known := pathSyscalls()
	pfd := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}}
	for {
		if !direct {
			pfd[0].Revents = 0
			if _, err := unix.Poll(pfd, -1); err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				t.miss("the trace stopped: " + err.Error())
				return
			}
			if pfd[0].Revents&unix.POLLIN == 0 {
				// POLLHUP: every process under the filter is gone.
				t.end()
				return
			}
		}
		var n seccompNotif
		if err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			// ENOENT: the process that called went away, or (waiting directly) every process.
			if errors.Is(err, unix.ENOENT) && direct && orphaned(pfd) {
				t.end()
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
				continue
			}
			t.miss("the trace stopped: " + err.Error())
			return
		}
		if args, ok := known[uintptr(n.nr)]; ok {
			recordCall(t, listener, &n, args)
		} else {
			t.miss("the program made system call " + strconv.Itoa(int(n.nr)) + ", which the trace does not follow")
		}
		resp := seccompNotifResp{id: n.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)); err != nil && !errors.Is(err, unix.ENOENT) {
			// ENOENT: the process went away meanwhile.
			t.miss("the trace could not let a call go on: " + err.Error())
		}
	}
}

// orphaned says whether the listener reports that no process is left under its filter.
func orphaned(pfd []unix.PollFd) bool {
	pfd[0].Revents = 0
	_, _ = unix.Poll(pfd, 0)
	return pfd[0].Revents&unix.POLLHUP != 0
}

// kernelAtLeast says whether the running kernel is at least major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
	if errno != 0 {
		return errno
	}
	return nil
}

// pathSyscalls are the calls the trace follows on this architecture.
func pathSyscalls() map[uintptr]pathArgs {
	m := make(map[uintptr]pathArgs, len(commonPathSyscalls)+len(archPathSyscalls))
	for nr, a := range commonPathSyscalls {
		m[nr] = a
	}
	for nr, a := range archPathSyscalls {
		m[nr] = a
	}
	return m
}

// recordCall records the paths of one stopped call, read from the process that made it
// while the call waits (listener's notification n).
func recordCall(t *Trace, listener int, n *seccompNotif, a pathArgs) {
	// valid says whether the call still waits: what was read is then its process's, not
	// that of another process that took its pid after it went.
	valid := func() bool {
		err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&n.id))
		if err != nil && !errors.Is(err, unix.ENOENT) {
			t.miss("the trace could not check a call: " + err.Error())
		}
		return err == nil
	}
	if a.link {
		t.miss("the program made a symbolic link")
	}
	exec := uintptr(n.nr) == unix.SYS_EXECVE || uintptr(n.nr) == unix.SYS_EXECVEAT
	names2 := a.names && uintptr(n.nr) == unix.SYS_RENAMEAT2 && n.args[4]&unix.RENAME_EXCHANGE != 0
	// Every path the call looks up, and whether it gets a second name.
	type lookup struct {
		path  string
		named bool
	}
	var found []lookup
	for i, spec := range [][2]int{{a.dirfd, a.path}, {a.dirfd2, a.path2}} {
		dirfd, arg := spec[0], spec[1]
		if arg < 0 {
			continue
		}
		p, ok := readPath(int(n.pid), n.args[arg])
		if !ok {
			if valid() {
				t.miss("a path the program named could not be read")
			}
			continue
		}
		if p == "" && !exec {
			// A call on a descriptor itself (AT_EMPTY_PATH), or one that fails.
			continue
		}
		looked, why := lookedUp(int(n.pid), p, dirfd, n.args)
		if why != "" {
			t.miss(why)
			continue
		}
		for j, l := range looked {
			// The path itself is renamed; the directories its ".." left are not.
			found = append(found, lookup{l, j == len(looked)-1 && (i == 0 && a.names || i == 1 && names2)})
		}
		if exec && len(looked) > 0 && t.under(looked[len(looked)-1]) {
			t.miss("the program ran a file in " + t.Under + ", whose interpreter the kernel reads unseen")
		}
	}
	kept := false
	for _, l := range found {
		kept = kept || t.under(l.path)
	}
	if !kept || !valid() {
		return
	}
	for _, l := range found {
		t.add(l.path, l.named)
	}
}

// readPath reads the NUL-terminated path at addr in process pid's memory, never across a
// page boundary it does not have to (the string may end just before unmapped memory).
func readPath(pid int, addr uint64) (string, bool) {
	if addr == 0 {
		return "", true
	}
	var out []byte
	var buf [512]byte
	for off := addr; len(out) < unix.PathMax; {
		n := min(uint64(len(buf)), 4096-off%4096)
		local := []unix.Iovec{{Base: &buf[0], Len: n}}
		remote := []unix.RemoteIovec{{Base: uintptr(off), Len: int(n)}}
		k, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if k <= 0 || err != nil {
			return "", false
		}
		if i := bytes.IndexByte(buf[:k], 0); i >= 0 {
			return string(append(out, buf[:i]...)), true
		}
		out = append(out, buf[:k]...)
		off += uint64(k)
	}
	return "", false
}

// lookedUp returns the paths the kernel looks up for p, made absolute against the
// directory its call is relative to (the working directory, or the descriptor in argument
// dirfd): p itself, and before each ".." the directory it leaves, since that is looked up
// too. Or it says why the lookup may reach a file the trace cannot name.
func lookedUp(pid int, p string, dirfd int, args [6]uint64) ([]string, string) {
	if !strings.HasPrefix(p, "/") {
		// Relative, or empty: the directory (or, for execveat, the file) itself.
		link := "/proc/" + strconv.Itoa(pid) + "/cwd"
		if dirfd >= 0 && int32(args[dirfd]) != unix.AT_FDCWD {
			link = "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(int(int32(args[dirfd])))
		}
		dir, err := os.Readlink(link)
		switch {
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH):
			// The process or its descriptor is gone: the call fails.
			return nil, ""
		case err != nil:
			return nil, "the directory a path is relative to could not be read: " + err.Error()
		case !strings.HasPrefix(dir, "/"):
			// Not a directory (a pipe, a socket): the call fails.
			return nil, ""
		}
		p = dir + "/" + p
	}
	var looked []string
	cur := []string{}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." {
			continue
		}
		if len(cur) > 0 && (cur[0] == "proc" || cur[0] == "dev") {
			if why := throughProc("/" + strings.Join(cur, "/")); why != "" {
				// A link of /proc's, or /dev's, to a file of some process's: what
				// follows it, ".." too, is looked up from that file.
				return nil, why
			}
		}
		if part == ".." {
			looked = append(looked, "/"+strings.Join(cur, "/"))
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		cur = append(cur, part)
	}
	last := "/" + strings.Join(cur, "/")
	if why := throughProc(last); why != "" && processDir(last) {
		return nil, why
	}
	return append(looked, last), ""
}

// throughProc says why a path is a link to a process's file (its working directory,
// root, executable or descriptors, under /proc or /dev), through which a lookup may
// reach a file the trace cannot name; or "".
func throughProc(p string) string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if parts[0] == "dev" && len(parts) >= 2 {
		switch {
		case parts[1] == "stdin" || parts[1] == "stdout" || parts[1] == "stderr":
			return "the program looked up a path below /dev/" + parts[1]
		case parts[1] == "fd" && len(parts) >= 3:
			return "the program looked up a path below /dev/fd"
		}
		return ""
	}
	if len(parts) < 3 || parts[0] != "proc" {
		return ""
	}
	rest := parts[2:]
	if len(rest) >= 2 && rest[0] == "task" {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return ""
	}
	switch rest[0] {
	case "cwd", "root", "exe", "map_files":
		return "the program looked up a path through /proc/*/" + rest[0]
	case "fd":
		if len(rest) >= 2 {
			return "the program looked up a path through /proc/*/fd"
		}
	}
	return ""
}

// processDir says whether p, a link of throughProc's, is one to a directory when it is
// the whole path looked up (a process's working directory or root, which may be in the
// traced directory); a descriptor opened again is one the trace saw opened.
func processDir(p string) bool {
	return strings.HasSuffix(p, "/cwd") || strings.HasSuffix(p, "/root")
}
