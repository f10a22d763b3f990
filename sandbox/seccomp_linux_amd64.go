package sandbox

import "golang.org/x/sys/unix"

// archDeniedSyscalls are x86-64's own system calls that the filter refuses: raw port I/O
// and calls Linux keeps only for old binaries.
var archDeniedSyscalls = []uintptr{
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_USELIB, unix.SYS_USTAT, unix.SYS_SYSFS, unix.SYS__SYSCTL,
	unix.SYS_NFSSERVCTL, unix.SYS_CREATE_MODULE, unix.SYS_GET_KERNEL_SYMS, unix.SYS_QUERY_MODULE,
}

// nativeSyscallLimit is where x32 system call numbers start.
const nativeSyscallLimit = 0x40000000

// auditArch is the architecture word the kernel puts in seccomp_data for native calls.
const auditArch = unix.AUDIT_ARCH_X86_64

// archPathSyscalls are x86-64's own calls that name paths, for the trace.
var archPathSyscalls = map[uintptr]pathArgs{
	unix.SYS_OPEN: onePath(-1, 0), unix.SYS_CREAT: onePath(-1, 0), unix.SYS_STAT: onePath(-1, 0),
	unix.SYS_LSTAT: onePath(-1, 0), unix.SYS_ACCESS: onePath(-1, 0), unix.SYS_READLINK: onePath(-1, 0),
	unix.SYS_MKDIR: onePath(-1, 0), unix.SYS_RMDIR: onePath(-1, 0), unix.SYS_UNLINK: onePath(-1, 0),
	unix.SYS_CHMOD: onePath(-1, 0), unix.SYS_CHOWN: onePath(-1, 0), unix.SYS_LCHOWN: onePath(-1, 0),
	unix.SYS_UTIME: onePath(-1, 0), unix.SYS_UTIMES: onePath(-1, 0), unix.SYS_MKNOD: onePath(-1, 0),
	unix.SYS_FUTIMESAT: onePath(0, 1),
	unix.SYS_RENAMEAT:  {dirfd: 0, path: 1, dirfd2: 2, path2: 3, names: true},
	unix.SYS_RENAME:    {dirfd: -1, path: 0, dirfd2: -1, path2: 1, names: true},
	unix.SYS_LINK:      {dirfd: -1, path: 0, dirfd2: -1, path2: 1, names: true},
	unix.SYS_SYMLINK:   {dirfd: -1, path: -1, dirfd2: -1, path2: 1, link: true},
}

// archQuietSyscalls are x86-64's own calls that name no path, for the trace.
var archQuietSyscalls = []uintptr{
	unix.SYS_POLL, unix.SYS_SELECT, unix.SYS_PIPE, unix.SYS_DUP2, unix.SYS_FORK, unix.SYS_VFORK,
	unix.SYS_EPOLL_WAIT, unix.SYS_EPOLL_CREATE, unix.SYS_GETDENTS, unix.SYS_EVENTFD, unix.SYS_SIGNALFD,
	unix.SYS_INOTIFY_INIT, unix.SYS_GETPGRP, unix.SYS_TIME, unix.SYS_ALARM, unix.SYS_PAUSE,
	unix.SYS_ARCH_PRCTL, unix.SYS_GETRLIMIT, unix.SYS_SETRLIMIT,
}
