package layers

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"

	"golang.org/x/sys/unix"
)

// setuptoolsImportRe is a module's top-level import of pkg_resources or setuptools: one
// that fails the import of the module. An indented one is inside a function or a try,
// which code that can do without it uses (Werkzeug's test app does).
var setuptoolsImportRe = regexp.MustCompile(`^(?:import|from)\s+(pkg_resources|setuptools)\b`)

// notRunTime are directories of installed packages whose code an app does not run: tests,
// and build helpers that import setuptools because they build.
var notRunTime = []string{"tests", "test", "testing", "distutils", "_distutils", "setuptools", "pkg_resources", "pip", "_vendor"}

// setuptoolsImporter finds, in the venv the install wrote under upper, a file that imports
// pkg_resources or setuptools when the venv lacks it: no setuptools, or one of 82 or later,
// which has no pkg_resources (a dependency's "setuptools>=3" brings the newest). It
// returns "" when no file needs what is missing. The venv is the sandbox's work: it is read
// through an os.Root, so no link in it leads outside; unreadable directories are skipped.
func setuptoolsImporter(upper, venv string) (string, error) {
	dir, err := realDirIn(upper, venv)
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	fsys := root.FS()
	sites, _ := fs.Glob(fsys, "lib/python*/site-packages")
	missing := map[string]bool{"pkg_resources": true, "setuptools": true}
	for _, site := range sites {
		for m := range missing {
			if info, err := root.Lstat(path.Join(site, m)); err == nil && info.IsDir() {
				delete(missing, m)
			}
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	found := ""
	for _, site := range sites {
		err := fs.WalkDir(fsys, site, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if p != site && slices.Contains(notRunTime, d.Name()) {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || path.Ext(p) != ".py" || d.Name() == "setup.py" {
				return nil
			}
			if m := importedModule(root, p); missing[m] {
				found = path.Join(venv, p)
				return fs.SkipAll
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.SkipAll) {
			return "", err
		}
		if found != "" {
			break
		}
	}
	return found, nil
}

// importedModule is "pkg_resources" or "setuptools" when the Python file p in root has a
// top-level line that imports it (the first such line), else "".
func importedModule(root *os.Root, p string) string {
	f, err := root.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := setuptoolsImportRe.FindSubmatch(sc.Bytes()); m != nil {
			return string(m[1])
		}
	}
	return ""
}
