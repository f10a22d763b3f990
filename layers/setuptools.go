package layers

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
// returns "" when no file needs what is missing. Files are read inside the venv only,
// without following links.
func setuptoolsImporter(upper, venv string) (string, error) {
	dir, err := realDirIn(upper, venv)
	if err != nil {
		return "", err
	}
	sites, _ := filepath.Glob(filepath.Join(dir, "lib", "python*", "site-packages"))
	missing := map[string]bool{"pkg_resources": true, "setuptools": true}
	for _, site := range sites {
		for m := range missing {
			if info, err := os.Lstat(filepath.Join(site, m)); err == nil && info.IsDir() {
				delete(missing, m)
			}
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	found := ""
	for _, site := range sites {
		err := filepath.WalkDir(site, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != site && slices.Contains(notRunTime, d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || filepath.Ext(p) != ".py" || d.Name() == "setup.py" {
				return nil
			}
			if m := importedModule(p); missing[m] {
				rel, _ := filepath.Rel(dir, p)
				found = filepath.Join(venv, rel)
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

// importedModule is "pkg_resources" or "setuptools" when the Python file at p has a line
// that imports it (the first such line), else "".
func importedModule(p string) string {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
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
