package sandbox

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"
)

// argv[0] of a re-executed pyship: initArg becomes a sandbox's first process, which sets it
// up as root and stays as its init; execArg starts the sandboxed program in the sandbox's
// own user namespace, under the system call filter.
const (
	initArg = "pyship-sandbox-init"
	execArg = "pyship-sandbox-exec"
)

// ErrUnsupported is returned on systems without Linux namespaces.
var ErrUnsupported = errors.New("the sandbox needs Linux namespaces; run pyship on Linux (a Linux CI runner, a VM, or WSL2)")

// Mount is a file system mounted into the sandbox.
type Mount struct {
	// Type is "bind", "tmpfs" or "overlay". An overlay shows Source and sends writes to
	// Scratch, leaving Source untouched.
	Type string `json:"type"`
	// Source is the host path of a bind mount, or the lower directory of an overlay.
	Source string `json:"source,omitempty"`
	// Scratch is a host directory for an overlay's writes.
	Scratch string `json:"scratch,omitempty"`
	// Target is the absolute path inside the sandbox.
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// ExecSpec describes one command to run in build mode, as a Dockerfile's RUN runs it: on
// the image's file system, with its writes kept in Upper for the caller to pack.
type ExecSpec struct {
	// Root is the image's root file system, a directory that the sandbox never writes to.
	Root string
	// Over are directories stacked on Root, topmost first, also never written to: layers
	// made earlier, like the dependencies.
	Over []string
	// Upper receives every write to the root file system (an overlay's upper directory).
	Upper string
	// Args is the command; Args[0] is looked up in the PATH of Env inside the sandbox.
	Args []string
	Env  []string
	// Dir is the working directory inside the sandbox.
	Dir      string
	Hostname string
	Mounts   []Mount

	// Limits bound what the command may use; zero means DefaultBuildLimits.
	Limits Limits
	// Egress, when set, lets the command reach the network through pyship's proxy, which
	// refuses this machine's own addresses; without it the sandbox has no network but its
	// own loopback.
	Egress *Egress
	// Trace, when set, records the paths below Trace.Under that the program and its
	// children look up (see Trace); Exec fills it.
	Trace *Trace

	// The process's output. Nil discards it. The sandbox only ever gets pipes: never a
	// terminal of the user's, which it could type into.
	Stdout io.Writer
	Stderr io.Writer
}

// Egress is the network a build sandbox may reach: anything pyship could reach itself,
// through an HTTP proxy that pyship runs outside the sandbox, except this machine's own
// addresses (loopback, its interfaces) and link-local ones (where cloud metadata services
// answer). The sandboxed program finds the proxy in HTTP_PROXY and HTTPS_PROXY; the
// proxy honours the host's own proxy settings.
type Egress struct {
	// Allow are host:port pairs reachable even though they are on this machine: a package
	// index or proxy that the user runs on loopback and configured for pip.
	Allow []string
	// Refused, if set, is told of every connection the proxy refused and why.
	Refused func(dest, reason string)
}

// initSpec is what Exec and Boot hand to the sandbox's init: the same for both modes, but
// for Upper (build mode) and Boot (run mode).
type initSpec struct {
	// Lowers are the root file system's directories, topmost first, never written to.
	Lowers []string `json:"lowers"`
	// Upper receives the writes to the root file system in build mode; in run mode they
	// go to a tmpfs instead (see Boot).
	Upper    string   `json:"upper,omitempty"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
	Hostname string   `json:"hostname"`
	Mounts   []Mount  `json:"mounts,omitempty"`
	// Boot is set in run mode: the program gets a published port, and its writes go to a
	// tmpfs of the sandbox's own.
	Boot *bootInit `json:"boot,omitempty"`
	// Merged is where the root is assembled; Work is the overlay's work directory.
	Merged string `json:"merged"`
	Work   string `json:"work"`
	// Shifted is true when pyship is root: the sandbox's ids are a range of unused host
	// ids (see HostID).
	Shifted bool `json:"shifted"`
	// Egress is true when the program may use pyship's proxy.
	Egress bool `json:"egress"`
	// Trace is true when the program runs under the trace (see Trace).
	Trace bool `json:"trace,omitempty"`
}

// stageSpec is what the init hands to the exec stage.
type stageSpec struct {
	Args  []string `json:"args"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir"`
	Trace bool     `json:"trace,omitempty"`
}

// ExitError reports a command that ran and exited unsuccessfully.
type ExitError struct {
	Args []string
	Code int
	// OutOfMemory is set when the kernel killed a process of the sandbox for going over
	// MemoryLimit.
	OutOfMemory bool
	MemoryLimit int64
}

func (e *ExitError) Error() string {
	if e.OutOfMemory {
		return fmt.Sprintf("%s was killed for using more than its %d MiB of memory (exit code %d)", e.Args[0], e.MemoryLimit>>20, e.Code)
	}
	return fmt.Sprintf("%s exited with code %d", e.Args[0], e.Code)
}

// PrivilegeError reports that the sandbox could not be created with the privileges pyship has.
type PrivilegeError struct {
	Err error
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("creating the sandbox: %v\nhint: pyship needs root, or unprivileged user namespaces, to build and run images: run it with sudo, or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)", e.Err)
}

func (e *PrivilegeError) Unwrap() error { return e.Err }

// SetupError reports that the sandbox failed before the command started.
type SetupError struct {
	Msg string
}

func (e *SetupError) Error() string { return "setting up the sandbox: " + e.Msg }

// Limits bound what a running sandbox may use.
type Limits struct {
	// Memory is the most memory, in bytes, its processes may hold.
	Memory int64 `json:"memory_bytes"`
	// CPUs is how many CPUs' worth of time it may use.
	CPUs float64 `json:"cpus"`
	// Pids is how many processes and threads it may have.
	Pids int64 `json:"pids"`
}

// DefaultLimits are the limits of a smoke test: enough for a web app with a few workers.
var DefaultLimits = Limits{Memory: 512 << 20, CPUs: 1, Pids: 256}

// DefaultBuildLimits are the limits of a dependency install or build step: enough to
// compile a large source distribution, not enough to take the machine down.
var DefaultBuildLimits = Limits{Memory: 4 << 30, CPUs: float64(runtime.NumCPU()), Pids: 2048}

// BootSpec describes an application to boot in run mode: its own network namespace, the
// image's file system with the writable layer a container runtime gives (in memory, and
// gone with the sandbox), a cgroup, and one port published on the host's loopback.
type BootSpec struct {
	// Layers are the image's file systems, topmost first, as directories that are only read.
	Layers []string
	// Writable is how many bytes the app may write to the image's file system (and /tmp
	// each): a tmpfs that the sandbox's mount namespace holds; zero means DefaultWritable.
	Writable int64
	Args     []string
	Env      []string
	Dir      string
	// User is the image's user: "uid[:gid]" or a name from the image's /etc/passwd.
	User     string
	Hostname string
	// Port is the port the app listens on inside; HostPort the host loopback port that
	// forwards to it (0 picks a free one).
	Port     int
	HostPort int
	Limits   Limits
	// Output receives the app's output as it comes, besides the lines the App keeps.
	Output io.Writer
}

// bootInit is the run mode's part of the spec the init gets.
type bootInit struct {
	Port     int    `json:"port"`
	User     string `json:"user"`
	Writable int64  `json:"writable_bytes"`
}

// DefaultWritable is how much an app may write in run mode: enough for an SQLite file, a
// cache or uploads in a smoke test, not enough to eat the machine's memory.
const DefaultWritable = 256 << 20

// Usage is what a sandbox used, from its cgroup: what `docker stats` shows.
type Usage struct {
	// MemoryPeak is the most memory the processes held at once, in bytes.
	MemoryPeak uint64 `json:"memory_peak_bytes"`
	// CPU is the CPU time they used.
	CPU time.Duration `json:"cpu_time_ns"`
	// OOMKills counts processes the kernel killed for going over the memory limit.
	OOMKills uint64 `json:"oom_kills"`
}
