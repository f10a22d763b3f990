package sandbox

import "golang.org/x/sys/unix"

// archDeniedSyscalls: arm64 has none of x86-64's legacy calls.
var archDeniedSyscalls []uintptr

// nativeSyscallLimit is 0: arm64 has no second ABI sharing its architecture word.
const nativeSyscallLimit = 0

// auditArch is the architecture word the kernel puts in seccomp_data for native calls.
const auditArch = unix.AUDIT_ARCH_AARCH64
