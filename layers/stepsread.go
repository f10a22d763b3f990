package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/sandbox"
)

// A build step reads a few of the repository's files: Django's collectstatic reads the
// settings and the static directories, not the views. The steps run under a trace
// (sandbox.Trace), and what they looked up in the application directory is kept beside
// their layer: each path with its state then (absent, or a file's mode and content, a
// directory's mode and names). A later build whose application layer differs, but not in
// any of those paths, gets the same layer without running the steps, as running them
// would give: they see the same base, dependencies, environment and steps (all in the
// trace's key), and the same bytes at every path they looked at.
//
// A trace is kept only when it is complete: every system call of the steps understood,
// no path reached through /proc's links, no symbolic link made or met in the application
// directory, no file of the repository renamed or linked, and no symbolic link in the
// base, the dependencies or the system trees leading into the application directory.

// stepsReadFile names the file of the steps' trace under key.
func stepsReadFile(layersDir, key string) string {
	return filepath.Join(layersDir, key+".read.json")
}

// stepsRead is the trace kept for a trace key.
type stepsRead struct {
	// Key is the cache key of the steps' layer that the traced run made.
	Key string `json:"key"`
	// Paths maps each path the steps looked up, relative to the application directory,
	// to its state (see pathState).
	Paths map[string]string `json:"paths"`
}

// maxStepsRead bounds a steps' trace kept: in a registry cache entry's config, whose JSON
// may escape it to twice its size, it stays below maxCacheConfig.
const maxStepsRead = 1 << 20

// unchangedSteps returns the layer of traced steps whose every looked-up path is as it
// was, in appTree, or nil.
func unchangedSteps(layersDir, traceKey, appTree string, log hclog.Logger) v1.Layer {
	data, err := readSmall(stepsReadFile(layersDir, traceKey), maxStepsRead)
	if err != nil {
		return nil
	}
	var r stepsRead
	if err := json.Unmarshal(data, &r); err != nil || r.Key == "" || !r.holds(appTree, log) {
		return nil
	}
	l, err := cachedLayer(layersDir, r.Key, log)
	if err != nil || l == nil {
		return nil
	}
	return l
}

// holds says whether every path r looked up is in appTree as it was. A trace of no path
// holds for nothing: steps always look up something of the repository they run in.
func (r *stepsRead) holds(appTree string, log hclog.Logger) bool {
	if len(r.Paths) == 0 {
		return false
	}
	root, err := os.OpenRoot(appTree)
	if err != nil {
		return false
	}
	defer root.Close()
	for rel, was := range r.Paths {
		if !fs.ValidPath(rel) {
			return false
		}
		if now, err := pathState(root, rel); err != nil || now != was {
			log.Debug("the build steps run again: a file they read changed", "path", rel)
			return false
		}
	}
	return true
}

// tracedEntry looks in the registry cache for the layer of steps traced under traceKey
// by another runner, and returns its entry when every path they looked up is in appTree
// as it was there; pulling it keeps the layer under key, and the trace, locally.
func tracedEntry(ctx context.Context, traceKey, key, appTree string, opts Options) *registryEntry {
	e := lookupRegistryCache(ctx, traceKey, "build steps, by what they read,", opts)
	if e == nil {
		return nil
	}
	var r stepsRead
	if err := json.Unmarshal([]byte(e.read), &r); err != nil {
		opts.Logger.Warn("the registry cache entry cannot be used; making the layer", "layer", e.what, "tag", e.tag.String(), "error", err)
		return nil
	}
	if !r.holds(appTree, opts.Logger) {
		return nil
	}
	r.Key = key
	local, err := json.Marshal(r)
	if err != nil {
		return nil
	}
	e.alias, e.localRead = key, local
	return e
}

// keepStepsRead keeps trace, the record of steps run over appTree (mounted at appDir)
// whose layer is under key, for later builds with traceKey; lowers are the trees under
// the application directory (the base's file system, the dependencies, system trees).
// It returns what it kept, or why it kept nothing: keeping it is never worth failing the
// build for.
func keepStepsRead(layersDir, traceKey, key string, trace *sandbox.Trace, appTree, appDir string, lowers []string) ([]byte, string) {
	if why := trace.Incomplete(); why != "" {
		return nil, why
	}
	root, err := os.OpenRoot(appTree)
	if err != nil {
		return nil, err.Error()
	}
	defer root.Close()
	paths, named := trace.Paths()
	rel := func(p string) string {
		r, _ := filepath.Rel(appDir, p)
		return filepath.ToSlash(r)
	}
	for _, p := range named {
		if _, err := root.Lstat(rel(p)); !errors.Is(err, fs.ErrNotExist) {
			return nil, "a build step renamed or linked " + p + ", a file of the repository"
		}
	}
	for _, l := range lowers {
		if link, err := linkIntoOnce(layersDir, l, appDir); err != nil || link != "" {
			if err != nil {
				return nil, err.Error()
			}
			return nil, "the symbolic link " + link + " may lead into " + appDir
		}
	}
	r := stepsRead{Key: key, Paths: map[string]string{}}
	for _, p := range paths {
		state, err := pathState(root, rel(p))
		if err != nil {
			return nil, fmt.Sprintf("%s: %v", p, err)
		}
		r.Paths[rel(p)] = state
	}
	data, err := json.Marshal(r)
	if err == nil && len(data) > maxStepsRead {
		return nil, fmt.Sprintf("the steps looked up %d paths, more than pyship keeps", len(r.Paths))
	}
	if err == nil {
		err = writeFileAtomic(stepsReadFile(layersDir, traceKey), data)
	}
	if err != nil {
		return nil, err.Error()
	}
	return data, ""
}

// linkIntoOnce is linkInto, remembered in layersDir for trees it found no such link in:
// trees in the cache never change (they are named by their content).
func linkIntoOnce(layersDir, tree, appDir string) (string, error) {
	sum := sha256.Sum256([]byte(tree + "\x00" + appDir))
	mark := filepath.Join(layersDir, "nolinks-"+hex.EncodeToString(sum[:16]))
	if _, err := os.Stat(mark); err == nil {
		return "", nil
	}
	link, err := linkInto(tree, appDir)
	if err == nil && link == "" {
		_ = writeFileAtomic(mark, nil)
	}
	return link, err
}

// errLinkMet says a looked-up path goes through a symbolic link, which the trace does not
// follow.
var errLinkMet = errors.New("a symbolic link on the path")

// pathState describes rel in root as a build step sees it: "-" when it is absent (or a
// file stands where a directory would be), "f MODE SIZE SHA256" for a file, "d MODE
// SHA256" of the names and types inside for a directory, "o MODE" for anything else.
// A symbolic link anywhere on the path is errLinkMet.
func pathState(root *os.Root, rel string) (string, error) {
	rel = path.Clean(rel)
	info, err := root.Lstat(".")
	if err != nil {
		return "", err
	}
	if rel != "." {
		// Component by component, so that a link on the way is seen, not followed.
		parts := strings.Split(rel, "/")
		for i := range parts {
			if parts[i] == ".." {
				return "", errLinkMet
			}
			info, err = root.Lstat(strings.Join(parts[:i+1], "/"))
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return "-", nil
			}
			if err != nil {
				return "", err
			}
			if info.Mode()&fs.ModeSymlink != 0 {
				return "", errLinkMet
			}
			if i < len(parts)-1 && !info.IsDir() {
				return "-", nil
			}
		}
	}
	h := sha256.New()
	switch {
	case info.Mode().IsRegular():
		f, err := root.Open(rel)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
		return fmt.Sprintf("f %o %d %s", info.Mode().Perm(), info.Size(), hex.EncodeToString(h.Sum(nil))), nil
	case info.IsDir():
		f, err := root.Open(rel)
		if err != nil {
			return "", err
		}
		defer f.Close()
		entries, err := f.ReadDir(-1)
		if err != nil {
			return "", err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			fmt.Fprintf(h, "%s\x00%o\n", e.Name(), e.Type())
		}
		return fmt.Sprintf("d %o %s", info.Mode().Perm(), hex.EncodeToString(h.Sum(nil))), nil
	}
	return fmt.Sprintf("o %o", uint32(info.Mode())), nil
}

// linkInto returns the first symbolic link in tree (a file system mounted at /) that
// leads to appDir, into it, or to a directory above it, or to a /proc or /dev path through
// which a process's directories and descriptors can be reached, as its path in the image;
// or "".
func linkInto(tree, appDir string) (string, error) {
	var found string
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		at := "/" + filepath.ToSlash(rel)
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(at), target)
		}
		target = path.Clean(target)
		if target == "/" || target == appDir || strings.HasPrefix(appDir, target+"/") || strings.HasPrefix(target, appDir+"/") || toProcessFiles(target) {
			found = at
			return fs.SkipAll
		}
		return nil
	})
	return found, err
}

// toProcessFiles says whether a link to target lets a path reach a process's working
// directory, root or descriptors: /proc, /proc/PID, /proc/PID/{cwd,root,fd,map_files,task}
// and below, /dev and /dev/fd.
func toProcessFiles(target string) bool {
	parts := strings.Split(strings.TrimPrefix(target, "/"), "/")
	switch parts[0] {
	case "proc":
		if len(parts) <= 2 {
			return true
		}
		switch parts[2] {
		case "cwd", "root", "fd", "map_files", "task":
			return true
		}
	case "dev":
		return len(parts) == 1 || parts[1] == "fd"
	}
	return false
}
