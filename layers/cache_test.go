package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/plan"
)

// syncBuffer collects log output from builds that may run at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildLogged builds like build and returns what was logged at Info and above.
func buildLogged(t *testing.T, ctx context.Context, p *plan.Plan, opts Options) (*Result, string, error) {
	t.Helper()
	var logged syncBuffer
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Info})
	opts.Epoch = time.Unix(1700000000, 0)
	res, err := Build(ctx, p, opts)
	if err == nil {
		if err := validate.Image(res.Image); err != nil {
			t.Errorf("validate.Image: %v", err)
		}
	}
	return res, logged.String(), err
}

// buildTwice builds p twice with opts and checks that both builds give one digest. It
// returns the first build's log.
func buildTwice(t *testing.T, p *plan.Plan, opts Options) string {
	t.Helper()
	first, logged, err := buildLogged(t, context.Background(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := buildLogged(t, context.Background(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := imageDigest(t, first.Image), imageDigest(t, again.Image); a != b {
		t.Errorf("two builds of one repository on one cache gave %s and %s", a, b)
	}
	return logged
}

// countingInstaller is a recordingInstaller that builds may share at once.
type countingInstaller struct {
	mu    sync.Mutex
	inner recordingInstaller
}

func (c *countingInstaller) Name() string { return c.inner.Name() }

func (c *countingInstaller) Install(ctx context.Context, req InstallRequest) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inner.Install(ctx, req)
}

func (c *countingInstaller) runs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inner.runs
}

// fileWithDigest finds the file under dir whose bytes hash to d.
func fileWithDigest(t *testing.T, dir string, d v1.Hash) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() || found != "" {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if hex.EncodeToString(h.Sum(nil)) == d.Hex {
			found = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == "" {
		t.Fatalf("no file under %s has digest %s", dir, d)
	}
	return found
}

// corrupt flips a byte in the middle of the file at p, keeping its size.
func corrupt(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cacheTestSource is a repository for the cache tests, with the plan that builds it.
func cacheTestSource(t *testing.T) (*plan.Plan, string) {
	t.Helper()
	p := testPlan(t, pushBase(t))
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "print(1)\n", "requirements.txt": "-r base.txt\nflask\n", "base.txt": "click\n"})
	return p, src
}

func TestConcurrentBuildsShareOneCache(t *testing.T) {
	p, src := cacheTestSource(t)
	cache := t.TempDir()
	inst := &countingInstaller{}
	const n = 4
	digests := make([]v1.Hash, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, _, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: inst})
			if errs[i] = err; err == nil {
				digests[i], errs[i] = res.Image.Digest()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("build %d of %d at once on one cache: %v", i+1, n, errs[i])
		}
		if digests[i] != digests[0] {
			t.Errorf("build %d gave %s, build 1 %s", i+1, digests[i], digests[0])
		}
	}
	if r := inst.runs(); r != 1 {
		t.Errorf("the installer ran %d times for %d builds of one repository, want once", r, n)
	}
}

func TestBuildRepairsACorruptCache(t *testing.T) {
	p, src := cacheTestSource(t)
	inst := &countingInstaller{}
	for _, tc := range []struct {
		name string
		// damage breaks the cache of a build of res, and returns the path a warning must name.
		damage func(t *testing.T, cache string, res *Result) string
		// reinstall is whether the installer must run again.
		reinstall bool
	}{
		{name: "truncated index", damage: func(t *testing.T, cache string, res *Result) string {
			p := filepath.Join(LayoutDir(cache), "index.json")
			if err := os.Truncate(p, 10); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "empty index", damage: func(t *testing.T, cache string, res *Result) string {
			p := filepath.Join(LayoutDir(cache), "index.json")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "flipped byte in the dependency layer", reinstall: true, damage: func(t *testing.T, cache string, res *Result) string {
			f := fileWithDigest(t, filepath.Join(cache, "layers"), fixtures.LayerDigests(t, res.Image)[1])
			corrupt(t, f)
			return f
		}},
		{name: "truncated dependency layer", reinstall: true, damage: func(t *testing.T, cache string, res *Result) string {
			f := fileWithDigest(t, filepath.Join(cache, "layers"), fixtures.LayerDigests(t, res.Image)[1])
			if err := os.Truncate(f, 20); err != nil {
				t.Fatal(err)
			}
			return f
		}},
		{name: "unreadable dependency entry", reinstall: true, damage: func(t *testing.T, cache string, res *Result) string {
			keys, err := filepath.Glob(filepath.Join(cache, "layers", "deps-*"+keySuffix))
			if err != nil || len(keys) != 1 {
				t.Fatalf("dependency entries %v (%v), want one", keys, err)
			}
			if err := os.WriteFile(keys[0], []byte("sha256:nonsense\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return keys[0]
		}},
		{name: "flipped byte in the user layer", damage: func(t *testing.T, cache string, res *Result) string {
			f := fileWithDigest(t, filepath.Join(cache, "layers"), fixtures.LayerDigests(t, res.Image)[2])
			corrupt(t, f)
			return f
		}},
		{name: "flipped byte in a base layer", damage: func(t *testing.T, cache string, res *Result) string {
			f := fileWithDigest(t, LayoutDir(cache), res.BaseLayers[0])
			corrupt(t, f)
			return f
		}},
		{name: "truncated base manifest", damage: func(t *testing.T, cache string, res *Result) string {
			d, err := res.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimPrefix(d.Config.Labels["org.opencontainers.image.base.digest"], "sha256:")
			f := filepath.Join(LayoutDir(cache), "blobs", "sha256", base)
			if err := os.Truncate(f, 10); err != nil {
				t.Fatal(err)
			}
			return f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			first, _, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: inst})
			if err != nil {
				t.Fatal(err)
			}
			bad := tc.damage(t, cache, first)
			runs := inst.runs()
			again, logged, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: inst})
			if err != nil {
				t.Fatalf("build after damage to %s: %v", bad, err)
			}
			if a, b := imageDigest(t, first.Image), imageDigest(t, again.Image); a != b {
				t.Errorf("built %s, then %s after damage to the cache", a, b)
			}
			if !strings.Contains(logged, "[WARN]") || !strings.Contains(logged, bad) {
				t.Errorf("no warning names %s:\n%s", bad, logged)
			}
			if got := inst.runs() - runs; (got > 0) != tc.reinstall {
				t.Errorf("the installer ran %d times after the damage, want reinstall=%v", got, tc.reinstall)
			}
			// The repair sticks: the next build has nothing to warn about.
			third, logged, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: inst})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logged, "[WARN]") || imageDigest(t, third.Image) != imageDigest(t, first.Image) {
				t.Errorf("a third build warns again or differs:\n%s", logged)
			}
		})
	}
}

func TestBuildWaitsForTheCacheLock(t *testing.T) {
	p, src := cacheTestSource(t)
	cache := t.TempDir()
	unlock, err := LockCache(context.Background(), cache, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Ctrl-C while waiting ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, logged, err := buildLogged(t, ctx, p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("a build waiting for a held cache returned %v after %s, want the context's error at once", err, time.Since(start))
	}
	if !strings.Contains(logged, "waiting for another pyship that is using the same cache") || !strings.Contains(logged, cache) {
		t.Errorf("the wait is not logged with the cache:\n%s", logged)
	}

	// The build goes on when the lock is let go.
	done := make(chan error, 1)
	var waited *Result
	go func() {
		res, _, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
		waited = res
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the build did not wait for the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the build still waits after the lock was let go")
	}
	again, _, err := buildLogged(t, context.Background(), p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := imageDigest(t, waited.Image), imageDigest(t, again.Image); a != b {
		t.Errorf("the build that waited gave %s, the next %s", a, b)
	}
}

func TestBuildCleansLeftOverScratch(t *testing.T) {
	p, src := cacheTestSource(t)
	cache := t.TempDir()
	old := time.Now().Add(-2 * staleAfter)
	type entry struct {
		path string
		old  bool
		gone bool
	}
	entries := []entry{
		// A build's scratch only lives while its pyship holds the lock.
		{path: "layers/.install-123/upper/x", gone: true},
		{path: "layers/.steps-45/src/y", gone: true},
		{path: "layers/.layer-678", gone: true},
		{path: "layers/.tmp-9", gone: true},
		{path: "layers/deps-0123.tar.gz", gone: true},
		// Extractions may be a pyship test --image's, running outside any build.
		{path: "rootfs/.extract-1/usr/bin/python3", old: true, gone: true},
		{path: "trees/.extract-2/opt/venv/x", old: true, gone: true},
		{path: "trees/.extract-3/opt/venv/x"},
		{path: rootfsDir + "/.extract-4/usr/bin/python3", old: true, gone: true},
		{path: treesDir + "/.extract-5/opt/venv/x", old: true, gone: true},
		{path: treesDir + "/.extract-6/opt/venv/x"},
		{path: "oci/blobs/sha256/" + strings.Repeat("ab", 32) + "4242", old: true, gone: true},
		{path: "oci/blobs/sha256/" + strings.Repeat("cd", 32) + "4343"},
		// Not scratch.
		{path: "layers/sha256-" + strings.Repeat("ef", 32) + ".tar.gz", old: true},
		{path: "rootfs/" + strings.Repeat("12", 32) + "/etc/os-release", old: true},
	}
	for _, e := range entries {
		writeFiles(t, cache, map[string]string{e.path: "x"})
		if e.old {
			top := filepath.Join(cache, strings.Join(strings.SplitN(e.path, "/", 3)[:2], "/"))
			if strings.HasPrefix(e.path, "oci/") {
				top = filepath.Join(cache, e.path)
			}
			if err := os.Chtimes(top, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	buildTwice(t, p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
	for _, e := range entries {
		_, err := os.Stat(filepath.Join(cache, e.path))
		if gone := errors.Is(err, fs.ErrNotExist); gone != e.gone {
			t.Errorf("%s: gone %v, want %v", e.path, gone, e.gone)
		}
	}
}

func TestCacheIsPrivate(t *testing.T) {
	p, src := cacheTestSource(t)
	t.Run("new", func(t *testing.T) {
		cache := filepath.Join(t.TempDir(), "a", "pyship")
		buildTwice(t, p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
		assertPrivate(t, filepath.Dir(cache), 0o077)
		assertPrivate(t, cache, 0o077)
		for _, dir := range []string{"layers"} {
			_ = filepath.WalkDir(filepath.Join(cache, dir), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				assertPrivate(t, p, 0o077)
				return nil
			})
		}
		for _, f := range []string{lockName, tagName, "oci", "oci/index.json"} {
			assertPrivate(t, filepath.Join(cache, f), 0o077)
		}
	})
	t.Run("existing", func(t *testing.T) {
		cache := t.TempDir()
		writeFiles(t, cache, map[string]string{"layers/old": "x"})
		if err := os.Chmod(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		buildTwice(t, p, Options{Source: src, CacheDir: cache, Installer: &countingInstaller{}})
		assertPrivate(t, cache, 0o077)
	})
	t.Run("not a cache", func(t *testing.T) {
		// A directory given as the cache by mistake (a home, /tmp) keeps its permissions.
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"notes.txt": "mine"})
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		logged := buildTwice(t, p, Options{Source: src, CacheDir: dir, Installer: &countingInstaller{}})
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("the directory's mode changed: %v %v", st.Mode(), err)
		}
		if !strings.Contains(logged, "not pyship's") {
			t.Errorf("no warning about the directory:\n%s", logged)
		}
		assertPrivate(t, filepath.Join(dir, "layers"), 0o077)
	})
}

// assertPrivate checks that p has none of the permission bits in mask.
func assertPrivate(t *testing.T, p string, mask fs.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&mask != 0 {
		t.Errorf("%s has mode %s: others may read it", p, st.Mode().Perm())
	}
}
