//go:build linux && e2e

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The host checks of the hostile-input suite: what a case could have changed on the host,
// read before and compared after, restored where it can be.

// hostileCanary is a TCP listener on the host that no sandbox may reach.
type hostileCanary struct {
	l    net.Listener
	hits atomic.Int32
}

func newHostileCanary(t *testing.T, network, addr string) *hostileCanary {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil
	}
	c := &hostileCanary{l: l}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.hits.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return c
}

func (c *hostileCanary) port() int { return c.l.Addr().(*net.TCPAddr).Port }

// hostFileGuard remembers host files a sandbox must not change.
type hostFileGuard struct {
	files map[string][]byte
}

func guardHostFiles(paths ...string) *hostFileGuard {
	g := &hostFileGuard{files: map[string][]byte{}}
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			g.files[p] = data
		}
	}
	return g
}

// check reports each guarded file that a probe changed (its lines carry "hostile probe"),
// and puts its content back. Other changes (a DHCP client rewriting resolv.conf) are
// returned apart and left alone.
func (g *hostFileGuard) check() (harmed, other []string) {
	for p, want := range g.files {
		got, err := os.ReadFile(p)
		if err == nil && bytes.Equal(got, want) {
			continue
		}
		if !bytes.Contains(got, []byte("hostile probe")) {
			other = append(other, p)
			continue
		}
		harmed = append(harmed, p)
		if werr := os.WriteFile(p, want, 0o644); werr != nil {
			harmed = append(harmed, fmt.Sprintf("(restoring %s failed: %v)", p, werr))
		}
	}
	slices.Sort(harmed)
	return harmed, other
}

const corePatternFile = "/proc/sys/kernel/core_pattern"

func readCorePattern() string {
	data, _ := os.ReadFile(corePatternFile)
	return strings.TrimRight(string(data), "\n")
}

// restoreCorePattern puts the host's kernel.core_pattern back if it is not want.
func restoreCorePattern(want string) (changedTo string) {
	got := readCorePattern()
	if got == want || want == "" {
		return ""
	}
	_ = os.WriteFile(corePatternFile, []byte(want), 0o644)
	return got
}

// loopDevice is a block device backed by a file, which a repository's device node can
// name: writes through it land in the file, not on a disk that matters.
type loopDevice struct {
	dev, backing string
	rdev         uint64
	once         sync.Once
}

func newLoopDevice(t *testing.T) (*loopDevice, error) {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(backing, make([]byte, 1<<20), 0o600); err != nil {
		return nil, err
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		return nil, fmt.Errorf("losetup: %w", err)
	}
	ld := &loopDevice{dev: strings.TrimSpace(string(out)), backing: backing}
	var st unix.Stat_t
	if err := unix.Stat(ld.dev, &st); err != nil {
		ld.detach()
		return nil, err
	}
	ld.rdev = st.Rdev
	t.Cleanup(ld.detach)
	return ld, nil
}

func (ld *loopDevice) detach() {
	ld.once.Do(func() { _ = exec.Command("losetup", "-d", ld.dev).Run() })
}

// contains detaches the device (so what was written reaches the file) and reports whether
// the file holds marker.
func (ld *loopDevice) contains(marker string) bool {
	ld.detach()
	data, _ := os.ReadFile(ld.backing)
	return bytes.Contains(data, []byte(marker))
}

// kernelLogHas reports whether the kernel log holds marker.
func kernelLogHas(marker string) bool {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EPIPE {
			continue // a record was overwritten while reading
		}
		if err != nil || n <= 0 {
			return false
		}
		if bytes.Contains(buf[:n], []byte(marker)) {
			return true
		}
	}
}

// userKey finds a key by description in root's user keyring, which the host shares with
// any process of uid 0 in the initial user namespace, and removes it.
func removeUserKey(desc string) bool {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc, 0)
	if err != nil || id <= 0 {
		return false
	}
	_, _ = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	return true
}

// treeDigest hashes a directory as it is on disk: names, types, modes, link targets and
// file contents, never following links or opening special files.
func treeDigest(dir string) string {
	h := sha256.New()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "error %s %v\n", p, err)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v\n", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", target)
		case info.Mode().IsRegular():
			if f, err := os.Open(p); err == nil {
				_, _ = io.Copy(h, f)
				f.Close()
			}
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// setIDFiles lists the set-uid and set-gid files under dir.
func setIDFiles(dir string) []string {
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			found = append(found, fmt.Sprintf("%s (%v)", p, info.Mode()))
		}
		return nil
	})
	return found
}

// specialFiles lists device nodes, FIFOs and sockets under dir, except overlayfs
// whiteouts (character devices 0:0).
func specialFiles(dir string) []string {
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) == 0 {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return nil
		}
		found = append(found, fmt.Sprintf("%s (%v)", p, d.Type()))
		return nil
	})
	return found
}

func firstFew(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" and %d more", len(list)-5)
	}
	return strings.Join(list, ", ")
}

// hostSnapshot is what the whole suite could leave on the host.
type hostSnapshot struct {
	mounts  map[string]bool
	cgroups map[string]bool
	netns   map[string]bool
	temps   map[string]bool
}

var cgroupGlobs = []string{"/sys/fs/cgroup/*/pyship/*", "/sys/fs/cgroup/pyship/*", "/sys/fs/cgroup/unified/pyship/*"}

func takeHostSnapshot() hostSnapshot {
	s := hostSnapshot{mounts: map[string]bool{}, cgroups: map[string]bool{}, netns: map[string]bool{}, temps: map[string]bool{}}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) > 5 {
				// Without the mount id and parent id, which a remount changes.
				s.mounts[strings.Join(f[2:], " ")] = true
			}
		}
	}
	for _, g := range cgroupGlobs {
		dirs, _ := filepath.Glob(g)
		for _, d := range dirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				s.cgroups[d] = true
			}
		}
	}
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, l := range links {
		if ns, err := os.Readlink(l); err == nil {
			s.netns[ns] = true
		}
	}
	if named, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range named {
			s.netns["/run/netns/"+e.Name()] = true
		}
	}
	temps, _ := filepath.Glob(filepath.Join(os.TempDir(), "pyship-*"))
	for _, d := range temps {
		s.temps[d] = true
	}
	return s
}

// processInfo is one line of the process table.
type processInfo struct {
	pid, ppid int
	exe, cmd  string
	netns     string
}

func processTable() map[int]processInfo {
	table := map[int]processInfo{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fields start after the last ")".
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		exe, _ := os.Readlink(filepath.Join(d, "exe"))
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		ns, _ := os.Readlink(filepath.Join(d, "ns", "net"))
		table[pid] = processInfo{pid: pid, ppid: ppid, exe: exe, cmd: strings.ReplaceAll(string(cmd), "\x00", " "), netns: ns}
	}
	return table
}

// descends reports whether pid has ancestor among its ancestors.
func descends(table map[int]processInfo, pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		p, ok := table[pid]
		if !ok {
			return false
		}
		if p.ppid == ancestor {
			return true
		}
		pid = p.ppid
	}
	return false
}

var digitsRe = regexp.MustCompile(`\d+`)

// leftovers compares the host with the snapshot taken before the suite and returns what
// the suite's own processes left behind. pids are the pyship processes it started; bin is
// the pyship binary under test. Changes that belong to other users of the machine are
// returned separately, to be logged.
func (before hostSnapshot) leftovers(pids map[int]bool, ownPaths []string) (ours, others []string) {
	self := os.Getpid()
	table := processTable()
	ownBin, _ := filepath.EvalSymlinks(pyshipBin)
	ownProc := map[int]bool{}
	for pid, p := range table {
		exe := strings.TrimSuffix(p.exe, " (deleted)")
		if pid != self && (descends(table, pid, self) || (ownBin != "" && exe == ownBin) || pids[pid]) {
			ownProc[pid] = true
			ours = append(ours, fmt.Sprintf("process %d (%s) is still running", pid, strings.TrimSpace(p.cmd)))
		}
	}
	after := takeHostSnapshot()
	isOurs := func(s string) bool {
		for _, p := range ownPaths {
			if p != "" && strings.Contains(s, p) {
				return true
			}
		}
		for _, d := range digitsRe.FindAllString(s, -1) {
			if n, err := strconv.Atoi(d); err == nil && pids[n] {
				return true
			}
		}
		return false
	}
	for m := range after.mounts {
		if before.mounts[m] {
			continue
		}
		if isOurs(m) {
			ours = append(ours, "mount left: "+m)
		} else {
			others = append(others, "new mount: "+m)
		}
	}
	for c := range after.cgroups {
		if before.cgroups[c] {
			continue
		}
		if isOurs(filepath.Base(c)) {
			ours = append(ours, "cgroup left: "+c)
		} else {
			others = append(others, "new cgroup: "+c)
		}
	}
	for ns := range after.netns {
		if before.netns[ns] {
			continue
		}
		held := false
		for pid, p := range table {
			if p.netns == ns && ownProc[pid] {
				held = true
			}
		}
		switch {
		case held:
			ours = append(ours, "network namespace left: "+ns)
		case strings.HasPrefix(ns, "/run/netns/"):
			others = append(others, "new named network namespace: "+ns)
		}
	}
	for d := range after.temps {
		if before.temps[d] {
			continue
		}
		if isOurs(filepath.Base(d)) {
			ours = append(ours, "temporary directory left: "+d)
		} else {
			others = append(others, "new temporary directory: "+d)
		}
	}
	for _, own := range ownPaths {
		entries, _ := filepath.Glob(filepath.Join(own, "pyship-*"))
		for _, e := range entries {
			ours = append(ours, "temporary directory left: "+e)
		}
	}
	slices.Sort(ours)
	slices.Sort(others)
	return ours, others
}

// killOurs ends the processes the suite started that are still running, by PID.
func killOurs(pids map[int]bool) {
	self := os.Getpid()
	table := processTable()
	ownBin, _ := filepath.EvalSymlinks(pyshipBin)
	for pid, p := range table {
		exe := strings.TrimSuffix(p.exe, " (deleted)")
		if pid != self && (pids[pid] || (ownBin != "" && exe == ownBin) || descends(table, pid, self)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(100 * time.Millisecond)
}
