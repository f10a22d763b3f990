package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// streamLayers fetches the layers of img that the layout lacks, all at once, each read
// from the registry once: its bytes go to the layout's blob and, decompressed, into the
// layer's extracted tree (layerTree's directory) as they arrive, checked against its
// digest and its diff ID. A layer whose tree is there already is only stored. What the
// build will use of the base decides what else happens: with useAccounts, no tree is
// made, the tar is only checked and read for the record of its account files; with
// useBlobs, only the blobs are stored. A tar that is read is handed to a tap from tap too,
// when it is set.
func streamLayers(img v1.Image, lp layout.Path, cacheDir string, use baseUse, tap func() TarTap, log hclog.Logger) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	seen := map[v1.Hash]bool{}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		blob := filepath.Join(string(lp), "blobs", d.Algorithm, d.Hex)
		if _, err := os.Lstat(blob); err == nil || seen[d] {
			// Stored already, or by another of this image's layers with the same bytes.
			continue
		}
		seen[d] = true
		var take taker
		tree := filepath.Join(cacheDir, treesDir, d.Hex)
		switch _, err := os.Stat(tree); {
		case err == nil, use == useBlobs:
			// Extracted already, or not needed: the blob is only stored.
		case use == useRoot:
			take = unpackTo(tree)
		default:
			take = recordAccounts(cacheDir, d)
		}
		var t TarTap
		if take != nil {
			t = tapped(tap)
		}
		wg.Go(func() {
			if err := streamLayer(l, d, blob, take, t, filepath.Join(cacheDir, verifiedDir), log); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("layer %s: %w", d, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// streamLayer writes l's compressed bytes to blob and, in the same pass, hands the tar
// they hold to take, which sees the whole tar or fails. The blob appears whole or not at
// all; a take that keeps what it read does so only once the bytes check out (a nil
// take means the layer's tree is there already). The blob, checked as it came, is
// recorded in verified as checked, unless verified is "". tap, when not nil, is handed
// the tar take reads, and told whether it checked out.
func streamLayer(l v1.Layer, d v1.Hash, blob string, take taker, tap TarTap, verified string, log hclog.Logger) error {
	if tap != nil {
		defer tap.Drop()
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return err
	}
	// A later build removes one an interrupted build left (cleanScratch).
	tmp, err := os.CreateTemp(filepath.Dir(blob), ".tmp-"+d.Hex+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	var src io.Reader = io.TeeReader(rc, io.MultiWriter(tmp, sum))
	if take != nil {
		// Three stages side by side: receiving, storing and hashing the bytes; their
		// decompression; what take does with the tar (creating the files, mostly).
		ahead := newReadAhead(src)
		defer func() {
			// A read from the registry that is under way ends when its body closes.
			rc.Close()
			ahead.Close()
		}()
		src = ahead
	}
	checked := func() error {
		if _, err := io.Copy(io.Discard, src); err != nil {
			return err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != d.Hex {
			return fmt.Errorf("the registry sent bytes that hash to sha256:%s", got)
		}
		return nil
	}
	if take == nil {
		if err := checked(); err != nil {
			return err
		}
	} else {
		diffID, err := l.DiffID()
		if err != nil {
			return err
		}
		mt, err := l.MediaType()
		if err != nil {
			return err
		}
		zr, err := decompressed(src, mt, diffID)
		if err != nil {
			return err
		}
		defer zr.Close()
		ahead := newReadAhead(zr)
		// Stopped before zr closes, once the registry's body is closed (first), which
		// ends a read under way in the stages before.
		defer ahead.Close()
		defer rc.Close()
		var tr io.Reader = ahead
		if tap != nil {
			tr = io.TeeReader(ahead, tap)
		}
		// To the tar stream's end, which checks the diff ID, then the blob's; take
		// calls this before it keeps anything. Once tr ends, the decompression has
		// read all it reads of src.
		all := func() error {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return err
			}
			return checked()
		}
		if err := take(tr, all); err != nil {
			return err
		}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return err
	}
	if tap != nil {
		if err := tap.Keep(d); err != nil {
			log.Debug("the tap of a layer failed; what it was for reads the layer", "layer", d, "error", err)
		}
	}
	if verified == "" {
		return nil
	}
	return stampVerified(verified, d, blob)
}

// A taker reads a layer's tar, tr, as it streams. It calls checked, which reads the
// stream to its end and checks its diff ID and digest, before it keeps anything.
type taker func(tr io.Reader, checked func() error) error

// unpackTo extracts the tar into tree, which appears only once the bytes check out. A
// tree that another pyship made meanwhile is kept, and the bytes are checked all the same.
func unpackTo(tree string) taker {
	return func(tr io.Reader, checked func() error) error {
		filled := false
		if _, err := makeOnce(tree, func(tmpTree string) error {
			filled = true
			if err := extract(tr, tmpTree); err != nil {
				return fmt.Errorf("extracting into %q: %w", tree, err)
			}
			return checked()
		}); err != nil || filled {
			return err
		}
		return checked()
	}
}

// recordAccounts records what the tar of the layer with digest d says about the account
// files (scanAccounts) in cacheDir, once the bytes check out.
func recordAccounts(cacheDir string, d v1.Hash) taker {
	return func(tr io.Reader, checked func() error) error {
		a, err := scanAccounts(tr)
		if err == nil {
			err = checked()
		}
		if err == nil {
			err = writeAccounts(cacheDir, d, a)
		}
		return err
	}
}

// decompressed reads the tar of a layer from its compressed bytes in r, by media type,
// and fails at its end unless the tar hashes to diffID.
func decompressed(r io.Reader, mt types.MediaType, diffID v1.Hash) (io.ReadCloser, error) {
	var (
		tr    io.Reader
		close = func() error { return nil }
	)
	switch mt {
	case types.OCILayerZStd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		tr, close = zr, func() error { zr.Close(); return nil }
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		tr = r
	default:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		tr, close = zr, zr.Close
	}
	return &verifying{r: tr, c: closerFunc(close), h: sha256.New(), want: diffID, what: "the layer's tar"}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// flatten makes dst the union of the layer trees (bottom first) as overlayfs shows
// them: an upper entry replaces a lower one (a directory merges with a directory only),
// a whiteout removes the entry below, an opaque directory hides everything below it.
// Files are hard links to the trees', so nothing is copied; nothing may write to either.
func flatten(trees []string, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	// Each directory's mode, owner and time are the topmost tree's, set at the end.
	var dirs []dirMode
	seen := map[string]int{}
	for _, tree := range trees {
		err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(tree, p)
			if err != nil || rel == "." {
				return err
			}
			target := filepath.Join(dst, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			st, _ := info.Sys().(*syscall.Stat_t)
			switch {
			case info.Mode()&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0:
				// A whiteout: the entry below is gone.
				return os.RemoveAll(target)
			case d.IsDir():
				opaque := make([]byte, 1)
				if n, _ := unix.Lgetxattr(p, "trusted.overlay.opaque", opaque); n == 1 && opaque[0] == 'y' {
					if err := os.RemoveAll(target); err != nil {
						return err
					}
				}
				if cur, err := os.Lstat(target); err != nil || !cur.IsDir() {
					_ = os.RemoveAll(target)
					if err := os.Mkdir(target, 0o700); err != nil {
						return err
					}
				}
				if st != nil {
					if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
						return err
					}
				}
				dm := dirMode{rel: "/" + filepath.ToSlash(rel), mode: info.Mode() & (fs.ModePerm | fs.ModeSticky), modTime: info.ModTime()}
				if i, ok := seen[dm.rel]; ok {
					dirs[i] = dm
				} else {
					seen[dm.rel] = len(dirs)
					dirs = append(dirs, dm)
				}
				return nil
			case info.Mode()&fs.ModeSymlink != 0:
				link, err := os.Readlink(p)
				if err != nil {
					return err
				}
				_ = os.RemoveAll(target)
				if err := os.Symlink(link, target); err != nil {
					return err
				}
				if st != nil {
					return os.Lchown(target, int(st.Uid), int(st.Gid))
				}
				return nil
			case info.Mode().IsRegular():
				_ = os.RemoveAll(target)
				return os.Link(p, target)
			default:
				// Pipes and sockets: the sandbox has no use for them; devices are never
				// extracted.
				return nil
			}
		})
		if err != nil {
			return fmt.Errorf("flattening %s: %w", tree, err)
		}
	}
	return setDirModes(dst, dirs, true)
}

// readAhead reads r in a goroutine of its own, up to readAheadChunks chunks ahead of its
// reader, so that the stages of a stream run side by side. r's error, or its end, comes
// after the chunks read before it.
type readAhead struct {
	chunks chan []byte
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	// err is set before chunks closes.
	err    error
	cur    []byte
	buf    []byte
	closed bool
}

const (
	readAheadChunk  = 256 << 10
	readAheadChunks = 8
)

var errReadAheadClosed = errors.New("read ahead: closed")

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{
		chunks: make(chan []byte, readAheadChunks),
		free:   make(chan []byte, readAheadChunks+2),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(ra.done)
		defer close(ra.chunks)
		for {
			var buf []byte
			select {
			case <-ra.stop:
				ra.err = errReadAheadClosed
				return
			case buf = <-ra.free:
			default:
				buf = make([]byte, readAheadChunk)
			}
			n, err := fill(r, buf[:cap(buf)])
			if n > 0 {
				select {
				case ra.chunks <- buf[:n]:
				case <-ra.stop:
					ra.err = errReadAheadClosed
					return
				}
			}
			switch {
			case errors.Is(err, io.EOF):
				return
			case err != nil:
				ra.err = err
				return
			}
		}
	}()
	return ra
}

// fill reads r into buf until buf is full or r fails. Unlike io.ReadFull, it gives r's
// own error as it is: a truncated gzip stream's io.ErrUnexpectedEOF is a failure, not the
// end that io.EOF is.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if ra.closed {
		return 0, errReadAheadClosed
	}
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			select {
			case ra.free <- ra.buf:
			default:
			}
			ra.buf = nil
		}
		c, ok := <-ra.chunks
		if !ok {
			if ra.err != nil {
				return 0, ra.err
			}
			return 0, io.EOF
		}
		ra.cur, ra.buf = c, c
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading goroutine and waits for it to end: r is the caller's again.
func (ra *readAhead) Close() error {
	ra.closed, ra.cur = true, nil
	select {
	case <-ra.stop:
	default:
		close(ra.stop)
	}
	for range ra.chunks {
	}
	<-ra.done
	return nil
}
