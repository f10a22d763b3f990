package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupParent is the cgroup, under the root of each hierarchy, that holds pyship's.
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

func newCgroup2(name string, l Limits) (cgroup, error) {
	parent, err := cgroup2.NewManager("/sys/fs/cgroup", "/"+cgroupParent, &cgroup2.Resources{})
	if err != nil {
		return nil, fmt.Errorf("creating cgroup /%s: %w", cgroupParent, err)
	}
	// Children can only be limited by controllers their parent delegates.
	if err := parent.ToggleControllers([]string{"cpu", "memory", "pids"}, cgroup2.Enable); err != nil {
		return nil, fmt.Errorf("delegating controllers to /%s: %w", cgroupParent, err)
	}
	mem, pids, period := l.Memory, l.Pids, uint64(100_000)
	quota := int64(l.CPUs * 100_000)
	swap := int64(0)
	m, err := cgroup2.NewManager("/sys/fs/cgroup", "/"+cgroupParent+"/"+name, &cgroup2.Resources{
		Memory: &cgroup2.Memory{Max: &mem, Swap: &swap},
		CPU:    &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)},
		Pids:   &cgroup2.Pids{Max: pids},
	})
	if err != nil {
		return nil, fmt.Errorf("creating cgroup /%s/%s: %w", cgroupParent, name, err)
	}
	return &cgroupV2{m: m}, nil
}

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
