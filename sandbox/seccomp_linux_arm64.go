package sandbox

import "golang.org/x/sys/unix"

// archDeniedSyscalls: arm64 has none of x86-64's legacy calls.
var archDeniedSyscalls []uintptr

// nativeSyscallLimit is 0: arm64 has no second ABI sharing its architecture word.
const nativeSyscallLimit = 0

// auditArch is the architecture word the kernel puts in seccomp_data for native calls.
const auditArch = unix.AUDIT_ARCH_AARCH64

// archPathSyscalls are arm64's calls that name paths beyond those of every architecture.
var archPathSyscalls = map[uintptr]pathArgs{
	unix.SYS_RENAMEAT: {dirfd: 0, path: 1, dirfd2: 2, path2: 3, names: true},
}

// archQuietSyscalls are arm64's own calls that name no path, for the trace.
var archQuietSyscalls = []uintptr{unix.SYS_GETRLIMIT, unix.SYS_SETRLIMIT}
