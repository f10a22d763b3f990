package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyship/pyship/layers"
)

// repository is what the repository's history says about the build.
type repository struct {
	// epoch is the time stamp of files and of the image: SOURCE_DATE_EPOCH, else the last
	// commit's time, else layers.DefaultEpoch.
	epoch    time.Time
	revision string
	source   string
	// committed is the last commit's time, zero when there is no readable .git; once the
	// dependency files are known, the time of the last commit that changed them, which
	// committedBy then names.
	committed   time.Time
	committedBy string
}

// repoInfo reads the last commit and the origin remote from the repository's .git. It
// runs no program: git would read .git/config, which can name programs to run
// (core.fsmonitor, gpg.program with log.showSignature, ...), and a repository is
// untrusted. Whatever cannot be read leaves the defaults.
func repoInfo(dir string) (repository, error) {
	info := repository{epoch: layers.DefaultEpoch}
	if g, err := openGit(dir); err == nil {
		if head, err := g.head(); err == nil {
			if t, err := g.commitTime(head); err == nil {
				info.epoch = t.UTC()
				info.committed = t.UTC()
				info.revision = head
			}
		}
		info.source = publicURL(g.originURL())
		g.close()
	}
	if s := os.Getenv("GITHUB_REPOSITORY"); s != "" {
		server := os.Getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		info.source = server + "/" + s
	}
	if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok {
		sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || sec < 0 {
			return info, usagef("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", s)
		}
		info.epoch = time.Unix(sec, 0).UTC()
	}
	return info, nil
}

// publicURL strips credentials from a remote URL, and drops remotes that are local paths.
func publicURL(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.Host == "" {
		if host, path, ok := strings.Cut(strings.TrimPrefix(remote, "git@"), ":"); ok && strings.HasPrefix(remote, "git@") {
			return "https://" + host + "/" + strings.TrimSuffix(path, ".git")
		}
		return ""
	}
	u.User = nil
	u.Scheme = "https"
	u.Path = strings.TrimSuffix(u.Path, ".git")
	return u.String()
}

// Bounds on what reading a repository's history may cost. Every file is opened inside an
// os.Root, without blocking, and read only when it is a regular file.
const (
	maxGitFile     = 1 << 20   // HEAD, a ref, config, a .git file
	maxPackedRefs  = 256 << 20 // packed-refs, read line by line
	maxLooseObject = 64 << 20  // a compressed loose object
	maxObject      = 16 << 20  // an object, inflated; a commit is a few hundred bytes
	maxDeltaOutput = 256 << 20 // all the objects inflated to resolve one
	maxDeltaDepth  = 1000      // git's pack.depth is at most 4095, 50 by default
	maxPacks       = 1000
	maxSymrefs     = 5 // git's own limit
)

var errNotFound = errors.New("object not found")

// gitRepo is a repository's git data, read as data.
type gitRepo struct {
	// top is the work tree's top: the directory that holds .git.
	top    string
	dir    *os.Root // the git directory: HEAD
	common *os.Root // objects, refs, packed-refs and config (a worktree shares them)
	// hashSize is 20 (SHA-1) or 32 (SHA-256), from extensions.objectformat.
	hashSize int
	config   []byte
	packs    []*gitPack
}

// openGit opens the git directory of the repository that holds dir, looking in dir and
// then its parents as git does (a project may be a directory of a larger repository):
// .git, or the directory a .git file names (a worktree or a submodule, which git keeps
// outside the work tree). A .git that is a symbolic link is not followed.
func openGit(dir string) (*gitRepo, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var root *os.Root
	var fi fs.FileInfo
	for {
		if root, err = os.OpenRoot(dir); err != nil {
			return nil, err
		}
		if fi, err = root.Lstat(".git"); err == nil {
			break
		}
		root.Close()
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			return nil, err
		}
		dir = filepath.Dir(dir)
	}
	defer root.Close()
	g := &gitRepo{top: dir, hashSize: sha1.Size}
	switch {
	case fi.IsDir():
		if g.dir, err = root.OpenRoot(".git"); err != nil {
			return nil, err
		}
		// A commondir would lead out of the repository; only worktrees have one.
		if _, err := g.dir.Lstat("commondir"); !errors.Is(err, fs.ErrNotExist) {
			g.dir.Close()
			return nil, errors.New(".git has a commondir")
		}
		g.common = g.dir
	case fi.Mode().IsRegular():
		data, err := readGitFile(root, ".git", maxGitFile)
		if err != nil {
			return nil, err
		}
		gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
		if !ok {
			return nil, errors.New(".git is not a gitdir file")
		}
		gitdir = strings.TrimSpace(gitdir)
		if !filepath.IsAbs(gitdir) {
			gitdir = filepath.Join(dir, gitdir)
		}
		if g.dir, err = os.OpenRoot(gitdir); err != nil {
			return nil, err
		}
		g.common = g.dir
		if data, err := readGitFile(g.dir, "commondir", maxGitFile); err == nil {
			common := strings.TrimSpace(string(data))
			if !filepath.IsAbs(common) {
				common = filepath.Join(gitdir, common)
			}
			if g.common, err = os.OpenRoot(common); err != nil {
				g.dir.Close()
				return nil, err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			g.dir.Close()
			return nil, err
		}
	default:
		return nil, fmt.Errorf(".git is a %v", fi.Mode().Type())
	}
	// A configuration that cannot be read leaves SHA-1 and no remote; HEAD is still read.
	g.config, _ = readGitFile(g.common, "config", maxGitFile)
	if format := gitConfigValues(g.config, "extensions", "", "objectformat"); len(format) > 0 {
		switch strings.ToLower(format[len(format)-1]) {
		case "sha1":
		case "sha256":
			g.hashSize = sha256.Size
		default:
			g.close()
			return nil, fmt.Errorf("object format %q", format[len(format)-1])
		}
	}
	return g, nil
}

func (g *gitRepo) close() {
	for _, p := range g.packs {
		p.close()
	}
	if g.common != g.dir {
		g.common.Close()
	}
	g.dir.Close()
}

// readGitFile reads a regular file inside root, at most limit bytes. Opening does not
// block, so a FIFO cannot hang it.
func readGitFile(root *os.Root, name string, limit int64) ([]byte, error) {
	f, err := openGitFile(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// openGitFile opens a regular file inside root, without blocking.
func openGitFile(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// head resolves HEAD to a commit's hexadecimal name.
func (g *gitRepo) head() (string, error) {
	ref := "HEAD"
	for range maxSymrefs {
		value, err := g.ref(ref)
		if err != nil {
			return "", err
		}
		if target, ok := strings.CutPrefix(value, "ref:"); ok {
			ref = strings.TrimSpace(target)
			if !validRef(ref) {
				return "", fmt.Errorf("bad ref %q", ref)
			}
			continue
		}
		if !g.validHash(value) {
			return "", fmt.Errorf("bad object name %q", value)
		}
		return value, nil
	}
	return "", errors.New("symbolic refs nest too deep")
}

// ref reads a ref: a loose one (HEAD in the git directory, the others where refs are
// shared), else its line in packed-refs.
func (g *gitRepo) ref(name string) (string, error) {
	root := g.common
	if name == "HEAD" {
		root = g.dir
	}
	data, err := readGitFile(root, name, maxGitFile)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || name == "HEAD" {
		return "", err
	}
	f, err := openGitFile(g.common, "packed-refs")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxPackedRefs))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	for sc.Scan() {
		value, refName, ok := strings.Cut(sc.Text(), " ")
		if ok && refName == name {
			return value, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("ref %s: %w", name, fs.ErrNotExist)
}

// validRef accepts a ref name as git writes them (git check-ref-format, roughly).
func validRef(ref string) bool {
	if !strings.HasPrefix(ref, "refs/") || len(ref) > 1024 || strings.HasSuffix(ref, "/") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.HasSuffix(ref, ".lock") {
		return false
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(` ~^:?*[\`, c) {
			return false
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return true
}

func (g *gitRepo) validHash(s string) bool {
	if len(s) != 2*g.hashSize {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func (g *gitRepo) newHash() hash.Hash {
	if g.hashSize == sha256.Size {
		return sha256.New()
	}
	return sha1.New()
}

// commitTime returns the committer time of a commit, as git log --format=%ct does.
func (g *gitRepo) commitTime(name string) (time.Time, error) {
	if !g.validHash(name) {
		return time.Time{}, fmt.Errorf("bad object name %q", name)
	}
	id, _ := hex.DecodeString(name)
	budget := int64(maxDeltaOutput)
	typ, data, err := g.object(id, 0, &budget)
	if err != nil {
		return time.Time{}, err
	}
	if typ != objCommit {
		return time.Time{}, fmt.Errorf("%s is not a commit", name)
	}
	// The header ends at the first empty line; the committer line is in it.
	header, _, _ := bytes.Cut(data, []byte("\n\n"))
	t, err := committerTime(header)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit %s: %w", name, err)
	}
	return t, nil
}

// committerTime reads the committer time from a commit's header.
func committerTime(header []byte) (time.Time, error) {
	for _, line := range bytes.Split(header, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("committer "))
		if !ok {
			continue
		}
		// "Name <email> 1700000000 +0200"
		end := bytes.LastIndexByte(rest, '>')
		if end < 0 {
			break
		}
		fields := strings.Fields(string(rest[end+1:]))
		if len(fields) != 2 {
			break
		}
		sec, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || sec < 0 || sec > 253402300799 { // the end of year 9999
			break
		}
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, errors.New("no committer time")
}

// Object types, as packs number them.
const (
	objCommit   = 1
	objTree     = 2
	objBlob     = 3
	objTag      = 4
	objOfsDelta = 6
	objRefDelta = 7
)

var objTypes = map[string]int{"commit": objCommit, "tree": objTree, "blob": objBlob, "tag": objTag}

// object reads an object, loose or packed, and checks that its content has its name.
func (g *gitRepo) object(id []byte, depth int, budget *int64) (int, []byte, error) {
	typ, data, err := g.looseObject(id)
	if errors.Is(err, fs.ErrNotExist) {
		typ, data, err = g.packedObject(id, depth, budget)
	}
	if err != nil {
		return 0, nil, err
	}
	h := g.newHash()
	for name, t := range objTypes {
		if t == typ {
			fmt.Fprintf(h, "%s %d\x00", name, len(data))
		}
	}
	h.Write(data)
	if !bytes.Equal(h.Sum(nil), id) {
		return 0, nil, fmt.Errorf("object %x does not have its name", id)
	}
	return typ, data, nil
}

// looseObject reads objects/xx/yyyy: zlib of "type size\0content".
func (g *gitRepo) looseObject(id []byte) (int, []byte, error) {
	name := hex.EncodeToString(id)
	f, err := openGitFile(g.common, "objects/"+name[:2]+"/"+name[2:])
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	zr, err := zlib.NewReader(bufio.NewReader(io.LimitReader(f, maxLooseObject)))
	if err != nil {
		return 0, nil, err
	}
	defer zr.Close()
	br := bufio.NewReader(io.LimitReader(zr, maxObject+64))
	header, err := br.ReadSlice(0)
	if err != nil || len(header) > 64 {
		return 0, nil, fmt.Errorf("loose object %s: bad header", name)
	}
	typName, sizeText, _ := strings.Cut(string(header[:len(header)-1]), " ")
	typ, ok := objTypes[typName]
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || size < 0 || size > maxObject {
		return 0, nil, fmt.Errorf("loose object %s: bad header", name)
	}
	data, err := io.ReadAll(io.LimitReader(br, size+1))
	if err != nil {
		return 0, nil, err
	}
	if int64(len(data)) != size {
		return 0, nil, fmt.Errorf("loose object %s: %d bytes, its header says %d", name, len(data), size)
	}
	return typ, data, nil
}

// packedObject finds an object in the packs.
func (g *gitRepo) packedObject(id []byte, depth int, budget *int64) (int, []byte, error) {
	if g.packs == nil {
		if err := g.openPacks(); err != nil {
			return 0, nil, err
		}
	}
	for _, p := range g.packs {
		off, err := p.find(id)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		return p.object(g, off, depth, budget)
	}
	return 0, nil, fmt.Errorf("object %x: %w", id, errNotFound)
}

func (g *gitRepo) openPacks() error {
	d, err := openGitDir(g.common, "objects/pack")
	if errors.Is(err, fs.ErrNotExist) {
		g.packs = []*gitPack{}
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := d.ReadDir(maxPacks * 4)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var names []string
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".idx"); ok && e.Type().IsRegular() {
			names = append(names, base)
		}
	}
	slices.Sort(names)
	g.packs = []*gitPack{}
	for _, base := range names[:min(len(names), maxPacks)] {
		p, err := openPack(g.common, "objects/pack/"+base, g.hashSize)
		if err != nil {
			continue // a broken pack; the object may be in another
		}
		g.packs = append(g.packs, p)
	}
	return nil
}

// openGitDir opens a directory inside root, without blocking.
func openGitDir(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is not a directory", name)
	}
	return f, nil
}

// gitPack is a pack and its version 2 index, read in place.
type gitPack struct {
	idx, pack         *os.File
	idxSize, packSize int64
	count             int64
	hashSize          int
}

func openPack(root *os.Root, base string, hashSize int) (*gitPack, error) {
	idx, err := openGitFile(root, base+".idx")
	if err != nil {
		return nil, err
	}
	pack, err := openGitFile(root, base+".pack")
	if err != nil {
		idx.Close()
		return nil, err
	}
	p := &gitPack{idx: idx, pack: pack, hashSize: hashSize}
	if err := p.check(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *gitPack) close() {
	p.idx.Close()
	p.pack.Close()
}

// check validates the headers and that the files are as large as they say.
func (p *gitPack) check() error {
	ii, err := p.idx.Stat()
	if err != nil {
		return err
	}
	pi, err := p.pack.Stat()
	if err != nil {
		return err
	}
	p.idxSize, p.packSize = ii.Size(), pi.Size()
	var head [8 + 256*4]byte
	if _, err := p.idx.ReadAt(head[:], 0); err != nil {
		return err
	}
	if !bytes.Equal(head[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return errors.New("not a version 2 pack index")
	}
	prev := uint32(0)
	for i := range 256 {
		n := binary.BigEndian.Uint32(head[8+4*i:])
		if n < prev {
			return errors.New("pack index fan-out decreases")
		}
		prev = n
	}
	p.count = int64(prev)
	// Names, CRCs and offsets, then two trailing checksums, at the least.
	if need := int64(len(head)) + p.count*int64(p.hashSize+8) + 2*int64(p.hashSize); p.idxSize < need {
		return fmt.Errorf("pack index of %d objects is only %d bytes", p.count, p.idxSize)
	}
	var ph [12]byte
	if _, err := p.pack.ReadAt(ph[:], 0); err != nil {
		return err
	}
	if !bytes.Equal(ph[:4], []byte("PACK")) || int64(binary.BigEndian.Uint32(ph[8:])) != p.count {
		return errors.New("pack does not match its index")
	}
	return nil
}

// find returns the offset of an object in the pack.
func (p *gitPack) find(id []byte) (int64, error) {
	var fan [8]byte
	lo := int64(0)
	if id[0] > 0 {
		if _, err := p.idx.ReadAt(fan[:4], 8+4*int64(id[0]-1)); err != nil {
			return 0, err
		}
		lo = int64(binary.BigEndian.Uint32(fan[:4]))
	}
	if _, err := p.idx.ReadAt(fan[4:], 8+4*int64(id[0])); err != nil {
		return 0, err
	}
	hi := int64(binary.BigEndian.Uint32(fan[4:]))
	names := int64(8 + 256*4)
	name := make([]byte, p.hashSize)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := p.idx.ReadAt(name, names+mid*int64(p.hashSize)); err != nil {
			return 0, err
		}
		switch c := bytes.Compare(name, id); {
		case c == 0:
			return p.offset(mid)
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, errNotFound
}

// offset reads the pack offset of the i-th object of the index.
func (p *gitPack) offset(i int64) (int64, error) {
	offsets := int64(8+256*4) + p.count*int64(p.hashSize+4)
	var b [8]byte
	if _, err := p.idx.ReadAt(b[:4], offsets+4*i); err != nil {
		return 0, err
	}
	off := int64(binary.BigEndian.Uint32(b[:4]))
	if off&0x80000000 != 0 {
		// An index into the table of 8-byte offsets, for packs over 2 GiB.
		large := offsets + 4*p.count + 8*(off&0x7fffffff)
		if large+8 > p.idxSize-2*int64(p.hashSize) {
			return 0, errors.New("large offset out of the index")
		}
		if _, err := p.idx.ReadAt(b[:], large); err != nil {
			return 0, err
		}
		off = int64(binary.BigEndian.Uint64(b[:]))
	}
	if off < 12 || off >= p.packSize-int64(p.hashSize) {
		return 0, fmt.Errorf("offset %d out of the pack", off)
	}
	return off, nil
}

// object reads the object at off, resolving deltas: at most maxDeltaDepth of them, and
// maxDeltaOutput bytes inflated in all.
func (p *gitPack) object(g *gitRepo, off int64, depth int, budget *int64) (int, []byte, error) {
	if depth > maxDeltaDepth {
		return 0, nil, errors.New("delta chain too deep (or a loop)")
	}
	r := bufio.NewReader(io.NewSectionReader(p.pack, off, p.packSize-off))
	c, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	typ := int(c>>4) & 7
	size := uint64(c & 15)
	for shift := 4; c&0x80 != 0; shift += 7 {
		if shift > 63-7 {
			return 0, nil, errors.New("object size overflows")
		}
		if c, err = r.ReadByte(); err != nil {
			return 0, nil, err
		}
		size |= uint64(c&0x7f) << shift
	}
	if size > maxObject {
		return 0, nil, fmt.Errorf("object of %d bytes", size)
	}
	var baseType int
	var base []byte
	switch typ {
	case objCommit, objTree, objBlob, objTag:
	case objOfsDelta:
		if c, err = r.ReadByte(); err != nil {
			return 0, nil, err
		}
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if rel > (1<<55)-1 {
				return 0, nil, errors.New("delta offset overflows")
			}
			if c, err = r.ReadByte(); err != nil {
				return 0, nil, err
			}
			rel = (rel+1)<<7 | int64(c&0x7f)
		}
		if rel <= 0 || rel > off-12 {
			return 0, nil, errors.New("delta base out of the pack")
		}
		if baseType, base, err = p.object(g, off-rel, depth+1, budget); err != nil {
			return 0, nil, err
		}
	case objRefDelta:
		id := make([]byte, p.hashSize)
		if _, err := io.ReadFull(r, id); err != nil {
			return 0, nil, err
		}
		if baseType, base, err = g.object(id, depth+1, budget); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, fmt.Errorf("object type %d", typ)
	}
	data, err := inflate(r, int64(size), budget)
	if err != nil {
		return 0, nil, err
	}
	if base == nil {
		return typ, data, nil
	}
	out, err := applyDelta(base, data, budget)
	return baseType, out, err
}

// inflate reads a zlib stream that must inflate to exactly size bytes.
func inflate(r io.Reader, size int64, budget *int64) ([]byte, error) {
	if *budget -= size; *budget < 0 {
		return nil, errors.New("objects too large to resolve")
	}
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("object inflates to %d bytes, not %d", len(data), size)
	}
	return data, nil
}

// applyDelta rebuilds an object from its base and a delta (git's pack format: the sizes
// of base and result, then copies from the base and inserted bytes).
func applyDelta(base, delta []byte, budget *int64) ([]byte, error) {
	varint := func() (int64, error) {
		var n int64
		for shift := 0; ; shift += 7 {
			if len(delta) == 0 || shift > 56 {
				return 0, errors.New("bad delta size")
			}
			c := delta[0]
			delta = delta[1:]
			n |= int64(c&0x7f) << shift
			if c&0x80 == 0 {
				return n, nil
			}
		}
	}
	srcSize, err := varint()
	if err != nil {
		return nil, err
	}
	dstSize, err := varint()
	if err != nil {
		return nil, err
	}
	if srcSize != int64(len(base)) {
		return nil, errors.New("delta does not fit its base")
	}
	if dstSize > maxObject {
		return nil, fmt.Errorf("delta result of %d bytes", dstSize)
	}
	if *budget -= dstSize; *budget < 0 {
		return nil, errors.New("objects too large to resolve")
	}
	out := make([]byte, 0, dstSize)
	for len(delta) > 0 {
		cmd := delta[0]
		delta = delta[1:]
		switch {
		case cmd&0x80 != 0:
			var off, n int64
			for i := range 4 {
				if cmd&(1<<i) != 0 {
					if len(delta) == 0 {
						return nil, errors.New("truncated delta")
					}
					off |= int64(delta[0]) << (8 * i)
					delta = delta[1:]
				}
			}
			for i := range 3 {
				if cmd&(0x10<<i) != 0 {
					if len(delta) == 0 {
						return nil, errors.New("truncated delta")
					}
					n |= int64(delta[0]) << (8 * i)
					delta = delta[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > int64(len(base)) || int64(len(out))+n > dstSize {
				return nil, errors.New("delta copies out of bounds")
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0:
			n := int(cmd)
			if n > len(delta) || int64(len(out)+n) > dstSize {
				return nil, errors.New("delta inserts out of bounds")
			}
			out = append(out, delta[:n]...)
			delta = delta[n:]
		default:
			return nil, errors.New("delta opcode 0")
		}
	}
	if int64(len(out)) != dstSize {
		return nil, errors.New("delta result has the wrong size")
	}
	return out, nil
}

// originURL is remote.origin.url, rewritten by the repository's url.<base>.insteadOf as
// git remote get-url does; "" when there is none.
func (g *gitRepo) originURL() string {
	var remote string
	found := false
	type rewrite struct{ base, prefix string }
	var rewrites []rewrite
	gitConfigLines(g.config, func(section, subsection, key, value string) {
		switch {
		case section == "remote" && subsection == "origin" && key == "url" && !found:
			remote, found = value, true
		case section == "url" && key == "insteadof":
			rewrites = append(rewrites, rewrite{subsection, value})
		}
	})
	best, bestLen := remote, 0
	for _, r := range rewrites {
		if len(r.prefix) > bestLen && strings.HasPrefix(remote, r.prefix) {
			best, bestLen = r.base+remote[len(r.prefix):], len(r.prefix)
		}
	}
	return best
}

// gitConfigLines walks a git configuration file as data (include directives are not
// followed) and calls f with each variable's section (lower case), subsection, key (lower
// case) and value.
func gitConfigLines(data []byte, f func(section, subsection, key, value string)) {
	var section, subsection string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if strings.HasPrefix(line, "[") {
			section, subsection = parseConfigSection(line)
			// A variable may follow the header on the same line.
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			line = strings.TrimSpace(line[end+1:])
		}
		if line == "" || line[0] == '#' || line[0] == ';' || section == "" {
			continue
		}
		key, value, hasValue := strings.Cut(line, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !hasValue {
			f(section, subsection, key, "true")
			continue
		}
		// A backslash at the end of a line continues the value.
		for strings.HasSuffix(value, `\`) && !strings.HasSuffix(value, `\\`) && i+1 < len(lines) {
			i++
			value = strings.TrimSuffix(value, `\`) + strings.TrimSuffix(lines[i], "\r")
		}
		f(section, subsection, key, parseConfigValue(value))
	}
}

// parseConfigSection reads [section "subsection"] or the older [section.subsection].
func parseConfigSection(line string) (string, string) {
	inner := strings.TrimPrefix(line, "[")
	if q := strings.IndexByte(inner, '"'); q >= 0 {
		var sub strings.Builder
		for i := q + 1; i < len(inner); i++ {
			switch c := inner[i]; {
			case c == '\\' && i+1 < len(inner):
				i++
				sub.WriteByte(inner[i])
			case c == '"':
				return strings.ToLower(strings.TrimSpace(inner[:q])), sub.String()
			default:
				sub.WriteByte(c)
			}
		}
		return "", ""
	}
	end := strings.IndexByte(inner, ']')
	if end < 0 {
		return "", ""
	}
	name := strings.ToLower(strings.TrimSpace(inner[:end]))
	section, sub, _ := strings.Cut(name, ".")
	return section, sub
}

// parseConfigValue unquotes a value and drops a trailing comment.
func parseConfigValue(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			default:
				b.WriteByte(s[i])
			}
		case !quoted && (c == '#' || c == ';'):
			return strings.TrimSpace(b.String())
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// gitConfigValues returns every value of section.subsection.key, in order.
func gitConfigValues(data []byte, section, subsection, key string) []string {
	var out []string
	gitConfigLines(data, func(s, sub, k, v string) {
		if s == section && sub == subsection && k == key {
			out = append(out, v)
		}
	})
	return out
}
