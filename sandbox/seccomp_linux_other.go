//go:build linux && !amd64 && !arm64

package sandbox

// The filter is written for amd64 and arm64; elsewhere the sandbox refuses to start.
var archDeniedSyscalls []uintptr

const (
	nativeSyscallLimit = 0
	auditArch          = 0
)
