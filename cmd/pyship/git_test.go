package main

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/layers"
)

// gitCLI runs the real git on a test repository, with no configuration from the host.
func gitCLI(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir,
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=c", "GIT_COMMITTER_EMAIL=c@example.com")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newGitRepo makes a repository with commits at the given Unix times (the last one is
// HEAD), each with a message long and alike enough that repacking stores deltas.
func newGitRepo(t *testing.T, format string, times ...int64) string {
	t.Helper()
	_, err := exec.LookPath("git")
	fixtures.Need(t, err == nil, "needs the git command to make test repositories")
	dir := t.TempDir()
	gitCLI(t, dir, nil, "init", "-q", "--object-format="+format, "-b", "main", ".")
	body := strings.Repeat("The same long paragraph in every commit message, so that commits delta well.\n", 60)
	for i, ts := range times {
		if err := os.WriteFile(filepath.Join(dir, "app.py"), fmt.Appendf(nil, "print(%d)\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
		gitCLI(t, dir, nil, "add", "app.py")
		date := fmt.Sprintf("GIT_COMMITTER_DATE=@%d +0200", ts)
		gitCLI(t, dir, []string{date, fmt.Sprintf("GIT_AUTHOR_DATE=@%d +0000", ts-1000)}, "commit", "-q", "-m", fmt.Sprintf("commit %d\n\n%s", i, body))
	}
	return dir
}

// noEnvSources clears what overrides the repository's own history.
func noEnvSources(t *testing.T) {
	t.Helper()
	t.Setenv("GITHUB_REPOSITORY", "")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	os.Unsetenv("SOURCE_DATE_EPOCH")
}

// repoInfoWithin fails the test if repoInfo takes more than a few seconds: hostile
// repositories must not make it hang.
func repoInfoWithin(t *testing.T, dir string) repository {
	t.Helper()
	type outcome struct {
		info repository
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		info, err := repoInfo(dir)
		done <- outcome{info, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.info
	case <-time.After(10 * time.Second):
		t.Fatal("repoInfo did not return within 10s")
		return repository{}
	}
}

func TestRepoInfoReadsGitData(t *testing.T) {
	const last = 1_700_000_000
	for _, tc := range []struct {
		name   string
		format string
		// prepare changes the repository and returns the directory to read.
		prepare func(t *testing.T, dir string) string
		source  string
	}{
		{name: "loose objects", format: "sha1"},
		{name: "after git gc", format: "sha1", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "gc", "-q")
			return dir
		}},
		{name: "after git repack -adf", format: "sha1", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "repack", "-q", "-adf", "--window=250", "--depth=50")
			gitCLI(t, dir, nil, "pack-refs", "--all")
			return dir
		}},
		{name: "shallow clone", format: "sha1", prepare: func(t *testing.T, dir string) string {
			clone := filepath.Join(t.TempDir(), "clone")
			gitCLI(t, dir, nil, "clone", "-q", "--depth", "1", "file://"+dir, clone)
			return clone
		}},
		{name: "shallow clone of a packed repository", format: "sha1", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "gc", "-q")
			clone := filepath.Join(t.TempDir(), "clone")
			gitCLI(t, dir, nil, "clone", "-q", "--depth", "1", "--no-local", dir, clone)
			return clone
		}},
		{name: "worktree", format: "sha1", prepare: func(t *testing.T, dir string) string {
			wt := filepath.Join(t.TempDir(), "wt")
			gitCLI(t, dir, nil, "worktree", "add", "-q", "--detach", wt, "HEAD")
			return wt
		}},
		{name: "directory of a repository", format: "sha1", prepare: func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "services", "api")
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			return sub
		}},
		{name: "detached head", format: "sha1", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "checkout", "-q", "--detach", "HEAD")
			return dir
		}},
		{name: "remote with credentials", format: "sha1", source: "https://github.com/o/r", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "remote", "add", "origin", "https://x-access-token:ghs_secret@github.com/o/r.git")
			return dir
		}},
		{name: "ssh remote", format: "sha1", source: "https://github.com/o/r", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "remote", "add", "origin", "git@github.com:o/r.git")
			return dir
		}},
		{name: "sha256 loose", format: "sha256"},
		{name: "sha256 after gc", format: "sha256", prepare: func(t *testing.T, dir string) string {
			gitCLI(t, dir, nil, "gc", "-q")
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noEnvSources(t)
			dir := newGitRepo(t, tc.format, last-7200, last-3600, last)
			if tc.prepare != nil {
				dir = tc.prepare(t, dir)
			}
			want := gitCLI(t, dir, nil, "rev-parse", "HEAD")
			info := repoInfoWithin(t, dir)
			if !info.epoch.Equal(time.Unix(last, 0)) || info.revision != want || info.source != tc.source {
				t.Errorf("epoch %v revision %q source %q, want %v %q %q", info.epoch, info.revision, info.source, time.Unix(last, 0).UTC(), want, tc.source)
			}
		})
	}
}

// Every commit of a repacked repository, deltas included, reads as git reads it.
func TestGitObjectsMatchGit(t *testing.T) {
	var times []int64
	for i := range 40 {
		times = append(times, 1_600_000_000+int64(i)*86400)
	}
	dir := newGitRepo(t, "sha1", times...)
	gitCLI(t, dir, nil, "repack", "-q", "-adf", "--window=250", "--depth=50")
	packs, _ := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "*.idx"))
	if len(packs) != 1 {
		t.Fatalf("packs %v", packs)
	}
	verify := gitCLI(t, dir, nil, "verify-pack", "-v", packs[0])
	deltas := 0
	for _, line := range strings.Split(verify, "\n") {
		if f := strings.Fields(line); len(f) == 7 && f[1] == "commit" {
			deltas++
		}
	}
	if deltas == 0 {
		t.Fatal("git stored no commit as a delta; the test would not exercise deltas")
	}
	g, err := openGit(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	for _, line := range strings.Split(gitCLI(t, dir, nil, "log", "--format=%H %ct"), "\n") {
		hash, ct, _ := strings.Cut(line, " ")
		want, _ := strconv.ParseInt(ct, 10, 64)
		got, err := g.commitTime(hash)
		if err != nil || got.Unix() != want {
			t.Errorf("commit %s: %v, %v; want %d", hash, got, err, want)
		}
	}
	t.Logf("%d commits stored as deltas", deltas)
}

// A .git/config that names programs (fsmonitor, pager, a gpg program that git log runs
// to show signatures) runs none of them.
func TestRepoInfoRunsNoProgram(t *testing.T) {
	noEnvSources(t)
	dir := newGitRepo(t, "sha1", 1_700_000_000)
	marker := filepath.Join(t.TempDir(), "ran")
	script := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$0 $*\" >> "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A signed commit (the signature is not checked by anyone: git log only hands it to
	// gpg.program, which is the point).
	tree := gitCLI(t, dir, nil, "rev-parse", "HEAD^{tree}")
	parent := gitCLI(t, dir, nil, "rev-parse", "HEAD")
	signed := fmt.Sprintf("tree %s\nparent %s\nauthor a <a@example.com> 1700000500 +0000\ncommitter c <c@example.com> 1700000600 +0000\n"+
		"gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQ==\n -----END PGP SIGNATURE-----\n\nsigned\n", tree, parent)
	obj := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(obj, []byte(signed), 0o644); err != nil {
		t.Fatal(err)
	}
	head := gitCLI(t, dir, nil, "hash-object", "-t", "commit", "-w", obj)
	gitCLI(t, dir, nil, "update-ref", "HEAD", head)
	for _, kv := range [][2]string{
		{"core.fsmonitor", script}, {"core.pager", script}, {"log.showSignature", "true"}, {"gpg.program", script},
		{"core.sshCommand", script}, {"core.askPass", script}, {"diff.external", script}, {"core.hooksPath", filepath.Dir(script)},
	} {
		gitCLI(t, dir, nil, "config", kv[0], kv[1])
	}
	gitCLI(t, dir, nil, "remote", "add", "origin", "ext::"+script+" %S")
	info := repoInfoWithin(t, dir)
	if data, err := os.ReadFile(marker); err == nil {
		t.Fatalf("a program named in .git/config ran:\n%s", data)
	}
	if info.revision != head || info.epoch.Unix() != 1_700_000_600 {
		t.Errorf("revision %q epoch %v, want %s at 1700000600", info.revision, info.epoch, head)
	}
}

func TestRepoInfoSourceDateEpochWins(t *testing.T) {
	noEnvSources(t)
	dir := newGitRepo(t, "sha1", 1_700_000_000)
	t.Setenv("SOURCE_DATE_EPOCH", "1234")
	if info := repoInfoWithin(t, dir); info.epoch.Unix() != 1234 {
		t.Errorf("epoch %v, want 1234", info.epoch)
	}
}

// packFile writes a pack and its version 2 index holding raw entries at the offsets
// they get, and returns nothing: tests use it to build corrupt and hostile packs.
type packEntry struct {
	hash []byte // the name the index gives the entry
	raw  []byte // header and data, as stored
}

func writePack(t *testing.T, dir string, entries []packEntry) {
	t.Helper()
	var pack bytes.Buffer
	pack.WriteString("PACK")
	binary.Write(&pack, binary.BigEndian, uint32(2))
	binary.Write(&pack, binary.BigEndian, uint32(len(entries)))
	offsets := make([]uint32, len(entries))
	for i, e := range entries {
		offsets[i] = uint32(pack.Len())
		pack.Write(e.raw)
	}
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])

	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	for i := range order {
		for j := i + 1; j < len(order); j++ {
			if bytes.Compare(entries[order[j]].hash, entries[order[i]].hash) < 0 {
				order[i], order[j] = order[j], order[i]
			}
		}
	}
	var idx bytes.Buffer
	idx.Write([]byte{0xff, 't', 'O', 'c'})
	binary.Write(&idx, binary.BigEndian, uint32(2))
	for b := range 256 {
		n := 0
		for _, e := range entries {
			if int(e.hash[0]) <= b {
				n++
			}
		}
		binary.Write(&idx, binary.BigEndian, uint32(n))
	}
	for _, i := range order {
		idx.Write(entries[i].hash)
	}
	for range order {
		binary.Write(&idx, binary.BigEndian, uint32(0))
	}
	for _, i := range order {
		binary.Write(&idx, binary.BigEndian, offsets[i])
	}
	idx.Write(sum[:])
	isum := sha1.Sum(idx.Bytes())
	idx.Write(isum[:])
	packDir := filepath.Join(dir, ".git", "objects", "pack")
	if err := os.MkdirAll(packDir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := "pack-" + hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(packDir, name+".pack"), pack.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(packDir, name+".idx"), idx.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entryHeader encodes a pack entry's type and size.
func entryHeader(typ int, size uint64) []byte {
	b := []byte{byte(typ<<4) | byte(size&15)}
	size >>= 4
	for size > 0 {
		b[len(b)-1] |= 0x80
		b = append(b, byte(size&0x7f))
		size >>= 7
	}
	return b
}

func deflate(data []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func varint(n uint64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// A hostile or broken .git gives the default epoch, silently and at once.
func TestRepoInfoSurvivesHostileGit(t *testing.T) {
	fakeHash := func(s string) []byte { h := sha1.Sum([]byte(s)); return h[:] }
	setHead := func(t *testing.T, dir string, hash []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte(hex.EncodeToString(hash)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loose := func(t *testing.T, dir, hexHash string) string {
		return filepath.Join(dir, ".git", "objects", hexHash[:2], hexHash[2:])
	}
	commitBody := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\ncommitter c <c@d> 1700000000 +0000\n\nm\n")
	realHash := func(typ string, body []byte) []byte {
		h := sha1.Sum(append(fmt.Appendf(nil, "%s %d\x00", typ, len(body)), body...))
		return h[:]
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		epoch   int64 // 0: the default epoch, and no revision
	}{
		{"no .git", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, ".git")) }, 0},
		{".git links out of the repository", func(t *testing.T, dir string) {
			other := newGitRepo(t, "sha1", 1_800_000_000)
			os.RemoveAll(filepath.Join(dir, ".git"))
			os.Symlink(filepath.Join(other, ".git"), filepath.Join(dir, ".git"))
		}, 0},
		{".git file names a missing directory", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, ".git"))
			os.WriteFile(filepath.Join(dir, ".git"), []byte("gitdir: /nonexistent/x\n"), 0o644)
		}, 0},
		{".git file is huge", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, ".git"))
			os.WriteFile(filepath.Join(dir, ".git"), bytes.Repeat([]byte("gitdir: "), 1<<20), 0o644)
		}, 0},
		{"HEAD is a FIFO", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "HEAD"))
			if err := unix.Mkfifo(filepath.Join(dir, ".git", "HEAD"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"HEAD links to /dev/zero", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "HEAD"))
			os.Symlink("/dev/zero", filepath.Join(dir, ".git", "HEAD"))
		}, 0},
		{"branch ref is a FIFO", func(t *testing.T, dir string) {
			ref := filepath.Join(dir, ".git", "refs", "heads", "main")
			os.Remove(ref)
			if err := unix.Mkfifo(ref, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"packed-refs is a FIFO", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "refs", "heads", "main"))
			if err := unix.Mkfifo(filepath.Join(dir, ".git", "packed-refs"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"packed-refs links to /dev/zero", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "refs", "heads", "main"))
			os.Symlink("/dev/zero", filepath.Join(dir, ".git", "packed-refs"))
		}, 0},
		{"ref loop", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ".git", "refs", "heads", "main"), []byte("ref: refs/heads/other\n"), 0o644)
			os.WriteFile(filepath.Join(dir, ".git", "refs", "heads", "other"), []byte("ref: refs/heads/main\n"), 0o644)
		}, 0},
		{"ref climbs out", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("ref: ../../../../../../etc/passwd\n"), 0o644)
		}, 0},
		{"config links to a host file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "config"))
			os.Symlink("/etc/passwd", filepath.Join(dir, ".git", "config"))
		}, 1_700_000_000},
		{"config is a FIFO", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ".git", "config"))
			if err := unix.Mkfifo(filepath.Join(dir, ".git", "config"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 1_700_000_000},
		{"commondir points elsewhere", func(t *testing.T, dir string) {
			other := newGitRepo(t, "sha1", 1_800_000_000)
			os.WriteFile(filepath.Join(dir, ".git", "commondir"), []byte(filepath.Join(other, ".git")+"\n"), 0o644)
		}, 0},
		{"truncated loose object", func(t *testing.T, dir string) {
			head := gitCLI(t, dir, nil, "rev-parse", "HEAD")
			p := loose(t, dir, head)
			data, _ := os.ReadFile(p)
			os.Chmod(p, 0o644)
			os.WriteFile(p, data[:len(data)/2], 0o644)
		}, 0},
		{"loose object that is not zlib", func(t *testing.T, dir string) {
			head := gitCLI(t, dir, nil, "rev-parse", "HEAD")
			p := loose(t, dir, head)
			os.Chmod(p, 0o644)
			os.WriteFile(p, bytes.Repeat([]byte{0x78, 0x9c, 0xff}, 100), 0o644)
		}, 0},
		{"loose object claims a huge size", func(t *testing.T, dir string) {
			head := gitCLI(t, dir, nil, "rev-parse", "HEAD")
			p := loose(t, dir, head)
			os.Chmod(p, 0o644)
			os.WriteFile(p, deflate(append([]byte("commit 99999999999999999999\x00"), commitBody...)), 0o644)
		}, 0},
		{"loose object does not match its name", func(t *testing.T, dir string) {
			head := gitCLI(t, dir, nil, "rev-parse", "HEAD")
			p := loose(t, dir, head)
			os.Chmod(p, 0o644)
			os.WriteFile(p, deflate(append(fmt.Appendf(nil, "commit %d\x00", len(commitBody)), commitBody...)), 0o644)
		}, 0},
		{"HEAD names a blob", func(t *testing.T, dir string) {
			blob, _ := hex.DecodeString(gitCLI(t, dir, nil, "rev-parse", "HEAD:app.py"))
			setHead(t, dir, blob)
		}, 0},
		{"delta that is its own base", func(t *testing.T, dir string) {
			h := fakeHash("loop")
			delta := deflate(append(append(varint(10), varint(10)...), 0x0a, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'))
			raw := append(append(entryHeader(7, 12), h...), delta...)
			writePack(t, dir, []packEntry{{h, raw}})
			setHead(t, dir, h)
		}, 0},
		{"two deltas based on each other", func(t *testing.T, dir string) {
			a, b := fakeHash("a"), fakeHash("b")
			delta := deflate(append(append(varint(1), varint(1)...), 0x01, 'x'))
			ea := append(append(entryHeader(7, 3), b...), delta...)
			// b is an offset delta whose base is a, at offset 12.
			off := 12 + len(ea)
			eb := append(append(entryHeader(6, 3), byte(off-12)), delta...)
			if off-12 >= 0x80 {
				t.Fatal("offset needs more bytes")
			}
			writePack(t, dir, []packEntry{{a, ea}, {b, eb}})
			setHead(t, dir, a)
		}, 0},
		{"delta with a huge result", func(t *testing.T, dir string) {
			base := commitBody
			bh := realHash("commit", base)
			eb := append(entryHeader(1, uint64(len(base))), deflate(base)...)
			h := fakeHash("huge")
			delta := append(append(varint(uint64(len(base))), varint(1<<60)...), 0x91, 0, 0xff) // copy 255 bytes from 0
			eh := append(append(entryHeader(7, uint64(len(delta))), bh...), deflate(delta)...)
			writePack(t, dir, []packEntry{{bh, eb}, {h, eh}})
			setHead(t, dir, h)
		}, 0},
		{"pack entry claims a huge size", func(t *testing.T, dir string) {
			h := fakeHash("big")
			writePack(t, dir, []packEntry{{h, append(entryHeader(1, 1<<40), deflate(commitBody)...)}})
			setHead(t, dir, h)
		}, 0},
		{"index claims more objects than it holds", func(t *testing.T, dir string) {
			h := fakeHash("idx")
			writePack(t, dir, []packEntry{{h, append(entryHeader(1, uint64(len(commitBody))), deflate(commitBody)...)}})
			idxs, _ := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "*.idx"))
			data, _ := os.ReadFile(idxs[0])
			for i := 8 + 4*0x80; i < 8+1024; i += 4 {
				binary.BigEndian.PutUint32(data[i:], 0xffffffff)
			}
			os.WriteFile(idxs[0], data, 0o644)
			setHead(t, dir, h)
		}, 0},
		{"pack index is a FIFO", func(t *testing.T, dir string) {
			h := fakeHash("fifo")
			packDir := filepath.Join(dir, ".git", "objects", "pack")
			os.MkdirAll(packDir, 0o755)
			if err := unix.Mkfifo(filepath.Join(packDir, "pack-x.idx"), 0o644); err != nil {
				t.Fatal(err)
			}
			setHead(t, dir, h)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noEnvSources(t)
			dir := newGitRepo(t, "sha1", 1_700_000_000)
			tc.prepare(t, dir)
			info := repoInfoWithin(t, dir)
			t.Log("why:", gitFailure(dir))
			// Walking the history of the same repository ends too, with or without a time.
			walked := make(chan struct{})
			go func() {
				defer close(walked)
				_, _, err := dependencyTime(dir, []string{"requirements.txt", "app.py"})
				t.Log("history:", err)
			}()
			select {
			case <-walked:
			case <-time.After(10 * time.Second):
				t.Fatal("dependencyTime did not return within 10s")
			}
			switch {
			case tc.epoch != 0:
				if info.epoch.Unix() != tc.epoch || info.source != "" {
					t.Errorf("epoch %v source %q, want %d and no source", info.epoch, info.source, tc.epoch)
				}
			case !info.epoch.Equal(layers.DefaultEpoch) || info.revision != "":
				t.Errorf("epoch %v revision %q, want the default epoch and no revision", info.epoch, info.revision)
			}
		})
	}
}

// gitFailure says why the history of dir cannot be read, for the test log.
func gitFailure(dir string) string {
	g, err := openGit(dir)
	if err != nil {
		return "open: " + err.Error()
	}
	defer g.close()
	head, err := g.head()
	if err != nil {
		return "HEAD: " + err.Error()
	}
	if _, err := g.commitTime(head); err != nil {
		return "commit: " + err.Error()
	}
	return "nothing"
}

func TestGitConfig(t *testing.T) {
	config := []byte(`[core]
	repositoryformatversion = 1
	bare
[extensions]
	objectFormat = sha256
[remote "origin"]
	URL = "https://example.com/a b.git" ; a comment
	url = https://second.example.com/x.git
[Remote "Other"] url = https://other.example.com/x
[url "https://github.com/"]
	insteadOf = gh:
	insteadOf = github:
[remote.legacy]
	url = https://legacy.example.com/x
`)
	for _, tc := range []struct {
		name, section, subsection, key string
		want                           []string
	}{
		{"bare key is true", "core", "", "bare", []string{"true"}},
		{"key case", "extensions", "", "objectformat", []string{"sha256"}},
		{"quoted value and comment", "remote", "origin", "url", []string{"https://example.com/a b.git", "https://second.example.com/x.git"}},
		{"subsection is case-sensitive", "remote", "other", "url", nil},
		{"variable after the header", "remote", "Other", "url", []string{"https://other.example.com/x"}},
		{"legacy subsection", "remote", "legacy", "url", []string{"https://legacy.example.com/x"}},
		{"repeated key", "url", "https://github.com/", "insteadof", []string{"gh:", "github:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gitConfigValues(config, tc.section, tc.subsection, tc.key); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	g := &gitRepo{config: []byte("[remote \"origin\"]\n\turl = gh:o/r.git\n[url \"https://github.com/\"]\n\tinsteadOf = gh:\n")}
	if got := g.originURL(); got != "https://github.com/o/r.git" {
		t.Errorf("insteadOf: %q", got)
	}
}

// A configuration of a million bytes of sections is read in one pass.
func TestGitConfigIsLinear(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < maxGitFile-100; i++ {
		fmt.Fprintf(&b, "[url \"u%d\"]\ninsteadOf = p%d\n", i, i)
	}
	b.WriteString("[remote \"origin\"]\nurl = p7/x\n")
	g := &gitRepo{config: []byte(b.String())}
	start := time.Now()
	if got := g.originURL(); got != "u7/x" {
		t.Errorf("origin %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func FuzzApplyDelta(f *testing.F) {
	f.Add([]byte("base object"), append(append(varint(11), varint(5)...), 0x91, 0, 5))
	f.Add([]byte(""), append(append(varint(0), varint(3)...), 3, 'a', 'b', 'c'))
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		budget := int64(maxDeltaOutput)
		out, err := applyDelta(base, delta, &budget)
		if err == nil && int64(len(out)) > maxObject {
			t.Fatalf("result of %d bytes", len(out))
		}
	})
}

func FuzzGitConfig(f *testing.F) {
	f.Add([]byte("[remote \"origin\"]\n\turl = \"x\\\n\" ; c\n"))
	f.Add([]byte("[a.b]c=d\\\ne\n[\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gitRepo{config: data}
		_ = g.originURL()
	})
}
