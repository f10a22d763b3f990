package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupParent is the cgroup that holds pyship's: under the root of each hierarchy on
// cgroup v1, under the cgroup placeV2 picks on cgroup v2.
const cgroupParent = "pyship"

// cgroup limits and measures one sandbox, on cgroup v1 (and hybrid) or v2 hosts.
type cgroup interface {
	add(pid int) error
	stats() (Usage, error)
	delete() error
}

// newCgroup makes the cgroup name with the limits.
func newCgroup(name string, l Limits) (cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		return newCgroup2(name, l)
	}
	return newCgroup1(name, l)
}

type cgroupV1 struct {
	cg   cgroup1.Cgroup
	path string
}

// v1Subsystems are the controllers pyship uses on cgroup v1.
var v1Subsystems = map[cgroup1.Name]bool{cgroup1.Memory: true, cgroup1.Cpu: true, cgroup1.Cpuacct: true, cgroup1.Pids: true}

func newCgroup1(name string, l Limits) (cgroup, error) {
	hierarchy := func() ([]cgroup1.Subsystem, error) {
		all, err := cgroup1.Default()
		if err != nil {
			return nil, err
		}
		var out []cgroup1.Subsystem
		for _, s := range all {
			if v1Subsystems[s.Name()] {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no memory, cpu or pids controller is mounted")
		}
		return out, nil
	}
	mem, period, quota, pids := l.Memory, uint64(100_000), int64(l.CPUs*100_000), l.Pids
	path := "/" + cgroupParent + "/" + name
	cg, err := cgroup1.New(cgroup1.StaticPath(path), &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Period: &period, Quota: &quota},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}, cgroup1.WithHierarchy(hierarchy))
	if err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", path, err)
	}
	return &cgroupV1{cg: cg, path: path}, nil
}

func (c *cgroupV1) add(pid int) error {
	return c.cg.Add(cgroup1.Process{Pid: pid})
}

func (c *cgroupV1) stats() (Usage, error) {
	m, err := c.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if m.Memory != nil && m.Memory.Usage != nil {
		u.MemoryPeak = m.Memory.Usage.Max
	}
	if m.CPU != nil && m.CPU.Usage != nil {
		u.CPU = time.Duration(m.CPU.Usage.Total)
	}
	// memory.oom_control counts the kills (Linux 4.13 and later).
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", c.path, "memory.oom_control"))
	if err == nil {
		u.OOMKills = keyValue(string(data), "oom_kill")
	}
	return u, nil
}

func (c *cgroupV1) delete() error { return c.cg.Delete() }

type cgroupV2 struct {
	m *cgroup2.Manager
}

// cgroup2Mount is where a cgroup v2 host mounts the unified hierarchy.
const cgroup2Mount = "/sys/fs/cgroup"

// leafName is the child that the processes of a cgroup are moved into before the cgroup
// hands controllers to sandboxes: cgroup v2 lets only a cgroup without processes of its own
// do that ("no internal processes"), the root excepted. Docker-in-Docker calls it "init".
const leafName = "pyship-init"

// v2Controllers are the controllers the limits need.
var v2Controllers = []string{"cpu", "memory", "pids"}

func newCgroup2(name string, l Limits) (cgroup, error) {
	own, err := ownCgroup2(cgroup2Mount)
	if err != nil {
		return nil, err
	}
	parent, err := prepareV2(cgroup2Mount, placeV2(cgroup2Mount, own))
	if err != nil {
		return nil, err
	}
	return newCgroup2In(parent, name, l)
}

// newCgroup2In makes the cgroup parent/name with the limits.
func newCgroup2In(parent, name string, l Limits) (cgroup, error) {
	mem, pids, period := l.Memory, l.Pids, uint64(100_000)
	quota := int64(l.CPUs * 100_000)
	swap := int64(0)
	group := path.Join(parent, name)
	m, err := cgroup2.NewManager(cgroup2Mount, group, &cgroup2.Resources{
		Memory: &cgroup2.Memory{Max: &mem, Swap: &swap},
		CPU:    &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)},
		Pids:   &cgroup2.Pids{Max: pids},
	})
	if err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", group, err)
	}
	return &cgroupV2{m: m}, nil
}

// ownCgroup2 reads which cgroup this process is in, relative to the cgroup2 file system
// mounted at mnt: /proc/self/cgroup names it from the root of this process's cgroup
// namespace, and the mount may show a subtree of that.
func ownCgroup2(mnt string) (string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return relativeCgroup(string(self), string(mounts), mnt)
}

// relativeCgroup finds the unified ("0::") cgroup in the text of /proc/self/cgroup and
// returns it relative to the root of the cgroup2 mount at mnt, read from mountinfo.
func relativeCgroup(self, mountinfo, mnt string) (string, error) {
	var own string
	for _, line := range strings.Split(self, "\n") {
		if v, ok := strings.CutPrefix(line, "0::"); ok {
			own = strings.TrimSuffix(strings.TrimSpace(v), " (deleted)")
		}
	}
	if !strings.HasPrefix(own, "/") {
		return "", fmt.Errorf("reading /proc/self/cgroup: no cgroup v2 entry in %q", self)
	}
	root := ""
	for _, line := range strings.Split(mountinfo, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" && f[4] == mnt {
			root = f[3] // the last mount on mnt wins, as it hides the earlier ones
		}
	}
	switch {
	case root == "":
		return "", fmt.Errorf("no cgroup2 file system is mounted at %s", mnt)
	case root == "/":
		return path.Clean(own), nil
	case own == root:
		return "/", nil
	case strings.HasPrefix(own, root+"/"):
		return path.Clean(strings.TrimPrefix(own, root)), nil
	}
	return "", fmt.Errorf("this process's cgroup %s is outside the cgroup %s mounted at %s", own, root, mnt)
}

// placeV2 decides which cgroup (relative to mnt) gets the "pyship" child that holds the
// sandboxes, given the cgroup pyship runs in:
//
//   - the root of the mount when pyship may give it children with controllers: it is the
//     host's root cgroup (exempt from "no internal processes"; pyship then does what it
//     always did, and leaves the cgroups of systemd's units alone), or a container's root
//     that holds no processes (an init system there keeps them in leaves);
//   - otherwise pyship's own cgroup: typically a privileged container's root, which holds
//     the container's processes and pyship itself. prepareV2 then moves those processes
//     into a leaf first, as Docker-in-Docker's entry point does. A pyship started from a
//     shell that an earlier pyship moved is in that leaf: the cgroup above it was prepared.
//
// Only the mount's root and pyship's own cgroup are candidates: cgroups elsewhere in a
// host's tree belong to whatever made them (systemd units, other containers).
func placeV2(mnt, own string) string {
	if writable(mnt) {
		if !exists(filepath.Join(mnt, "cgroup.type")) {
			return "/" // only the root cgroup has no cgroup.type
		}
		procs, err := os.ReadFile(filepath.Join(mnt, "cgroup.procs"))
		if err == nil && len(strings.TrimSpace(string(procs))) == 0 && missingControllers(mnt) == nil {
			return "/"
		}
	}
	if path.Base(own) == leafName {
		own = path.Dir(own)
	}
	return own
}

// prepareV2 makes at/pyship ready to hold sandboxes' cgroups and returns it: the processes
// of at, if it is not the root, move into at/pyship-init, and both at and at/pyship hand the
// controllers down. Where that cannot be done, the error says what to run instead.
func prepareV2(mnt, at string) (string, error) {
	dir := filepath.Join(mnt, at)
	if !writable(dir) {
		return "", &cgroupSetupError{
			Msg:  fmt.Sprintf("the cgroup v2 file system at %s is read-only, so the app's memory, CPU and processes cannot be limited", mnt),
			Hint: "in a container, run it with --privileged (Docker and Podman then mount /sys/fs/cgroup read-write), or run pyship on the host",
		}
	}
	if err := missingControllers(dir); err != nil {
		return "", &cgroupSetupError{
			Msg:  fmt.Sprintf("cgroup %s cannot limit the app: %v", at, err),
			Hint: fmt.Sprintf("enable them in the parent cgroup (echo '+cpu +memory +pids' > %s), or start pyship in a cgroup that has them (systemd-run --scope -p Delegate=yes pyship ...)", filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")),
		}
	}
	if exists(filepath.Join(dir, "cgroup.type")) {
		if err := moveToLeaf(dir); err != nil {
			return "", leafError(mnt, at, err)
		}
	}
	if err := enableControllers(dir); err != nil {
		return "", leafError(mnt, at, err)
	}
	parent := path.Join(at, cgroupParent)
	pdir := filepath.Join(mnt, parent)
	if err := os.Mkdir(pdir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("creating cgroup %s: %w", parent, err)
	}
	// Children can only be limited by controllers their parent delegates.
	if err := enableControllers(pdir); err != nil {
		return "", fmt.Errorf("delegating controllers to cgroup %s: %w", parent, err)
	}
	return parent, nil
}

// moveToLeaf moves every process of the cgroup dir into its child pyship-init. Processes
// may fork or exit meanwhile, so it reads the list again until it is empty.
func moveToLeaf(dir string) error {
	leaf := filepath.Join(dir, leafName)
	for range 100 {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		pids := strings.Fields(string(data))
		if len(pids) == 0 {
			return nil
		}
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		for _, pid := range pids {
			err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("moving process %s into %s: %w", pid, leaf, err)
			}
		}
	}
	return fmt.Errorf("processes keep appearing in %s", dir)
}

// enableControllers hands the controllers of the limits to the children of the cgroup dir.
func enableControllers(dir string) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+strings.Join(v2Controllers, " +")), 0)
	if err != nil {
		return fmt.Errorf("enabling %s in %s: %w", strings.Join(v2Controllers, ", "), filepath.Join(dir, "cgroup.subtree_control"), err)
	}
	return nil
}

// missingControllers names the controllers of the limits that the cgroup dir cannot use.
func missingControllers(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	have := strings.Fields(string(data))
	var missing []string
	for _, c := range v2Controllers {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("its parent does not delegate the %s controller (cgroup.controllers: %q)", strings.Join(missing, ", "), strings.TrimSpace(string(data)))
	}
	return nil
}

func leafError(mnt, at string, err error) error {
	dir := filepath.Join(mnt, at)
	return &cgroupSetupError{
		Msg: fmt.Sprintf("preparing cgroup %s for the sandbox (cgroup v2 lets only a cgroup without processes of its own delegate controllers, so its processes move into %s first): %v", at, leafName, err),
		Hint: fmt.Sprintf("do it before running pyship, as Docker-in-Docker does: mkdir -p %[1]s/%[2]s && for p in $(cat %[1]s/cgroup.procs); do echo $p > %[1]s/%[2]s/cgroup.procs; done && echo '+cpu +memory +pids' > %[1]s/cgroup.subtree_control",
			dir, leafName),
	}
}

// cgroupSetupError reports a cgroup the sandbox cannot be limited in, with what to do.
type cgroupSetupError struct {
	Msg, Hint string
}

func (e *cgroupSetupError) Error() string { return e.Msg + "\nhint: " + e.Hint }

// writable reports whether this process may create cgroups in dir (not on a read-only mount).
func writable(dir string) bool { return unix.Access(dir, unix.W_OK) == nil }

func (c *cgroupV2) add(pid int) error { return c.m.AddProc(uint64(pid)) }

func (c *cgroupV2) stats() (Usage, error) {
	m, err := c.m.Stat()
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if m.CPU != nil {
		u.CPU = time.Duration(m.CPU.UsageUsec) * time.Microsecond
	}
	if m.Memory != nil {
		u.MemoryPeak = m.Memory.MaxUsage
	}
	if m.MemoryEvents != nil {
		u.OOMKills = m.MemoryEvents.OomKill
	}
	return u, nil
}

func (c *cgroupV2) delete() error { return c.m.Delete() }

// keyValue reads "key N" from a cgroup file of such lines.
func keyValue(data, key string) uint64 {
	for _, line := range strings.Split(data, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
