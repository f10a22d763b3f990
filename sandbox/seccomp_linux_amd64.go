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
