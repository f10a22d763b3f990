package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM in a sandbox, on every architecture: what Docker's default
// profile refuses and a build or a web app has no use for. Without them a process cannot
// mount, enter or make namespaces, load kernel code, trace other processes, reach the
// kernel keyring, or change the clock.
var deniedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT,
	unix.SYS_OPEN_TREE, unix.SYS_OPEN_TREE_ATTR, unix.SYS_MOUNT_SETATTR, unix.SYS_LISTMOUNT, unix.SYS_STATMOUNT,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP, unix.SYS_PIDFD_GETFD,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_SYSLOG, unix.SYS_ACCT, unix.SYS_VHANGUP,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_QUOTACTL, unix.SYS_QUOTACTL_FD, unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}

// namespaceFlags are the clone flags that make namespaces; clone with any of them is refused.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// deniedSocketFamilies are address families a sandbox may not open: vsock reaches the
// hypervisor and other VMs past the network namespace; AF_ALG is the kernel crypto API,
// a frequent source of kernel bugs and of no use to a build or a web app.
var deniedSocketFamilies = []uint32{unix.AF_VSOCK, unix.AF_ALG}

// allowedPersonalities are the personality(2) values Docker allows: the default, the
// 32-bit variant, the query value, and UNAME26. Disabling address randomisation is not
// among them.
var allowedPersonalities = []uint32{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// deniedIoctls are terminal requests that would let a process type into, or drive, a
// terminal it shares with the user.
var deniedIoctls = []uint32{unix.TIOCSTI, unix.TIOCLINUX}

// Offsets into struct seccomp_data.
const (
	seccompNr   = 0
	seccompArch = 4
	seccompArg0 = 16 // the low 32 bits of args[0] on little-endian machines
	seccompArg1 = 24
)

// seccompFilter is the sandbox's system call filter as a classic BPF program: system calls
// of another architecture, those in deniedSyscalls, clone with namespace flags, the
// terminal ioctls, sockets of the denied families and personalities Docker does not allow
// fail; clone3, whose flags a filter cannot read, is reported as missing so that the C
// library falls back to clone. Everything else is allowed.
func seccompFilter() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("the sandbox has no system call filter for %s; pyship runs on amd64 and arm64", runtime.GOARCH)
	}
	var f bpfProgram
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	allow := uint32(unix.SECCOMP_RET_ALLOW)

	f.load(seccompArch)
	f.jumpIfNot(auditArch, "deny")
	f.load(seccompNr)
	if nativeSyscallLimit > 0 {
		// x32 system calls share the architecture word with x86-64 but not its numbers.
		f.jumpIfAtLeast(nativeSyscallLimit, "deny")
	}
	for _, nr := range append(deniedSyscalls, archDeniedSyscalls...) {
		f.jumpIf(uint32(nr), "deny")
	}
	f.jumpIf(unix.SYS_CLONE3, "nosys")
	f.jumpIf(unix.SYS_IOCTL, "ioctl")
	f.jumpIf(unix.SYS_CLONE, "clone")
	f.jumpIf(unix.SYS_SOCKET, "socket")
	f.jumpIf(unix.SYS_PERSONALITY, "personality")
	f.ret(allow)

	f.label("socket")
	f.load(seccompArg0)
	for _, family := range deniedSocketFamilies {
		f.jumpIf(family, "deny")
	}
	f.ret(allow)

	f.label("personality")
	f.load(seccompArg0)
	for _, p := range allowedPersonalities {
		f.jumpIf(p, "allow")
	}
	f.ret(eperm)

	f.label("ioctl")
	f.load(seccompArg1)
	for _, req := range deniedIoctls {
		f.jumpIf(req, "deny")
	}
	f.ret(allow)

	f.label("clone")
	f.load(seccompArg0)
	f.jumpIfAnyBit(namespaceFlags, "deny")
	f.ret(allow)

	f.label("allow")
	f.ret(allow)
	f.label("nosys")
	f.ret(enosys)
	f.label("deny")
	f.ret(eperm)
	return f.assemble()
}

// installSeccomp applies the filter to the calling thread, which must then execute the
// sandboxed program: the filter carries over execve and cannot be removed. no_new_privs
// must be set first.
func installSeccomp() error {
	prog, err := seccompFilter()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("installing the system call filter: %w", err)
	}
	return nil
}

// bpfProgram assembles a classic BPF program with forward jumps to named labels.
type bpfProgram struct {
	insns  []unix.SockFilter
	labels map[string]int
	// fixups are jumps whose target label is not yet placed: instruction index and label,
	// for the true branch (jt) or the false one.
	fixups []bpfFixup
}

type bpfFixup struct {
	at    int
	label string
	jt    bool
}

func (p *bpfProgram) add(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

func (p *bpfProgram) load(offset uint32) { p.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offset) }

func (p *bpfProgram) ret(v uint32) { p.add(unix.BPF_RET|unix.BPF_K, v) }

func (p *bpfProgram) jump(code uint16, k uint32, label string, jt bool) {
	p.add(unix.BPF_JMP|code|unix.BPF_K, k)
	p.fixups = append(p.fixups, bpfFixup{at: len(p.insns) - 1, label: label, jt: jt})
}

// jumpIf jumps to label when the accumulator equals k.
func (p *bpfProgram) jumpIf(k uint32, label string) { p.jump(unix.BPF_JEQ, k, label, true) }

// jumpIfNot jumps to label when the accumulator differs from k.
func (p *bpfProgram) jumpIfNot(k uint32, label string) { p.jump(unix.BPF_JEQ, k, label, false) }

// jumpIfAtLeast jumps to label when the accumulator is k or more.
func (p *bpfProgram) jumpIfAtLeast(k uint32, label string) { p.jump(unix.BPF_JGE, k, label, true) }

// jumpIfAnyBit jumps to label when the accumulator has any of k's bits.
func (p *bpfProgram) jumpIfAnyBit(k uint32, label string) { p.jump(unix.BPF_JSET, k, label, true) }

func (p *bpfProgram) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.insns)
}

func (p *bpfProgram) assemble() ([]unix.SockFilter, error) {
	for _, fx := range p.fixups {
		target, ok := p.labels[fx.label]
		if !ok {
			return nil, fmt.Errorf("seccomp: no label %q", fx.label)
		}
		off := target - fx.at - 1
		if off < 0 || off > 255 {
			return nil, fmt.Errorf("seccomp: jump to %q out of range (%d)", fx.label, off)
		}
		if fx.jt {
			p.insns[fx.at].Jt = uint8(off)
		} else {
			p.insns[fx.at].Jf = uint8(off)
		}
	}
	return p.insns, nil
}
