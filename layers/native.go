package layers

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/plan"
)

// Native code: a source distribution that needs a compiler is built in a builder, the base
// plus a compiler and the -dev packages it asks for (from the base's own apt), and only what
// the build made reaches the image, with the runtime libraries it links.

// buildEssentials are what every source build of a C extension needs.
var buildEssentials = []string{"build-essential", "pkg-config"}

// compileSigns are what pip's output says when a build needs a compiler or a library's
// headers, and the Debian packages that provide them.
var compileSigns = []struct {
	re   *regexp.Regexp
	pkgs []string
}{
	{regexp.MustCompile(`(?i)command '[^']*(?:gcc|cc|g\+\+|c\+\+)' failed|(?:gcc|cc|x86_64-linux-gnu-gcc): (?:not found|No such file)|unable to execute '[^']*gcc'|error: command 'gcc' failed|C compiler cannot create executables|No CMAKE_C_COMPILER could be found|Unknown compiler\(s\)|you need a C compiler|Broken toolchain: cannot link a simple C program`), nil},
	{regexp.MustCompile(`(?i)Python\.h: No such file`), nil},
	{regexp.MustCompile(`pg_config executable not found|Error: pg_config|libpq-fe\.h: No such file`), []string{"libpq-dev"}},
	{regexp.MustCompile(`mysql_config not found|Can not find valid pkg-config name|mysql\.h: No such file`), []string{"default-libmysqlclient-dev"}},
	{regexp.MustCompile(`libxml/[a-z]+\.h: No such file|libxslt development packages|xslt-config`), []string{"libxml2-dev", "libxslt1-dev"}},
	{regexp.MustCompile(`ffi\.h: No such file|No package 'libffi' found`), []string{"libffi-dev"}},
	{regexp.MustCompile(`headers or library files could not be found for jpeg|jpeglib\.h: No such file`), []string{"libjpeg-dev", "zlib1g-dev"}},
	{regexp.MustCompile(`headers or library files could not be found for zlib|zlib\.h: No such file`), []string{"zlib1g-dev"}},
	{regexp.MustCompile(`openssl/[a-z]+\.h: No such file`), []string{"libssl-dev"}},
	{regexp.MustCompile(`krb5-config|gssapi/gssapi\.h: No such file`), []string{"libkrb5-dev"}},
	{regexp.MustCompile(`lber\.h: No such file|sasl/sasl\.h: No such file|ldap\.h: No such file`), []string{"libldap-dev", "libsasl2-dev"}},
	{regexp.MustCompile(`sql\.h: No such file`), []string{"unixodbc-dev"}},
	{regexp.MustCompile(`yaml\.h: No such file`), []string{"libyaml-dev"}},
	{regexp.MustCompile(`cairo\.h: No such file|No package 'cairo' found`), []string{"libcairo2-dev"}},
	{regexp.MustCompile(`Could not run curl-config|curl-config: not found|curl/curl\.h: No such file`), []string{"libcurl4-openssl-dev", "libssl-dev"}},
	{regexp.MustCompile(`(?i)can't find Rust compiler|cargo[^\n]*not found|rustc[^\n]*not found`), []string{"cargo"}},
}

// nativePackages are the -dev packages the source builds of well-known projects need, for
// when pip's output names the project but not the missing header.
var nativePackages = map[string][]string{
	"psycopg2":    {"libpq-dev"},
	"psycopg":     {"libpq-dev"},
	"psycopg-c":   {"libpq-dev"},
	"mysqlclient": {"default-libmysqlclient-dev"},
	"mariadb":     {"libmariadb-dev"},
	"lxml":        {"libxml2-dev", "libxslt1-dev"},
	"pillow":      {"libjpeg-dev", "zlib1g-dev"},
	"python-ldap": {"libldap-dev", "libsasl2-dev"},
	"pycairo":     {"libcairo2-dev"},
	"pyodbc":      {"unixodbc-dev"},
	"gssapi":      {"libkrb5-dev"},
	"cffi":        {"libffi-dev"},
	"pyyaml":      {"libyaml-dev"},
	"pycurl":      {"libcurl4-openssl-dev", "libssl-dev"},
}

var (
	failedWheelRe = regexp.MustCompile(`Failed building wheel for ([A-Za-z0-9][A-Za-z0-9._-]*)`)
	// failedListRe is pip's summary: "Failed to build a b" (before 24.1), "Failed to build
	// installable wheels for some pyproject.toml based projects (a, b)" (since).
	failedListRe = regexp.MustCompile(`(?m)^(?:ERROR: )?Failed to build (?:installable wheels for some pyproject\.toml based projects \(([^)\n]*)\)|([A-Za-z0-9._ -]+)$)`)
	// encounteredRe is pip's own summary of the package whose install failed.
	encounteredRe = regexp.MustCompile(`Encountered error while (?:trying to install package|generating package metadata)\.\s*╰─>\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)
	// collectingRe finds what pip was getting when a build's metadata step failed, which
	// pip does not name: the last project it collected.
	collectingRe = regexp.MustCompile(`(?m)^\s*Collecting ([A-Za-z0-9][A-Za-z0-9._-]*)`)
)

// builderNeeds reads a failed install's output: when a source build failed for want of a
// compiler or headers, it returns the Debian packages a builder needs (sorted) and the
// projects that failed to build.
func builderNeeds(output, python string, root *os.Root) (pkgs, projects []string) {
	set := map[string]bool{}
	found := false
	for _, s := range compileSigns {
		if s.re.MatchString(output) {
			found = true
			for _, p := range s.pkgs {
				set[p] = true
			}
		}
	}
	var names []string
	for _, m := range failedWheelRe.FindAllStringSubmatch(output, -1) {
		names = append(names, m[1])
	}
	for _, m := range encounteredRe.FindAllStringSubmatch(output, -1) {
		names = append(names, m[1])
	}
	for _, m := range failedListRe.FindAllStringSubmatch(output, -1) {
		names = append(names, strings.FieldsFunc(m[1]+" "+m[2], func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	for _, n := range names {
		name := detect.NormalizeName(n)
		if !slices.Contains(projects, name) {
			projects = append(projects, name)
		}
		for _, p := range nativePackages[name] {
			set[p] = true
		}
	}
	known := false
	for _, p := range projects {
		known = known || nativePackages[p] != nil
	}
	if !found && !known {
		// A build that failed for another reason (no package to put in a wheel, a
		// syntax error): a compiler would not help.
		return nil, nil
	}
	if all := collectingRe.FindAllStringSubmatch(output, -1); len(projects) == 0 && len(all) > 0 {
		name := detect.NormalizeName(all[len(all)-1][1])
		projects = []string{name}
		for _, p := range nativePackages[name] {
			set[p] = true
		}
	}
	for _, p := range buildEssentials {
		set[p] = true
	}
	if python != "" && !hasPythonHeaders(root, python) {
		// Debian's own Python keeps its headers in pythonX.Y-dev; a Python built into
		// /usr/local, as in the official images, has them already.
		set["python"+python+"-dev"] = true
	}
	slices.Sort(projects)
	return slices.Sorted(maps.Keys(set)), projects
}

func hasPythonHeaders(root *os.Root, python string) bool {
	for _, dir := range []string{"usr/local/include", "usr/include"} {
		if info, err := root.Stat(path.Join(dir, "python"+python, "Python.h")); err == nil && info.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// libDirs are where the dynamic linker finds libraries in a Debian image.
var libDirs = []string{
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu",
	"lib", "usr/lib", "lib64", "usr/lib64", "usr/local/lib",
}

// maxELFScan caps the size of a file read as ELF: extension modules are some MiB at most.
const maxELFScan = 256 << 20

// missingLibraries finds the shared libraries that the ELF files under venv link and that
// neither the venv itself (auditwheel's .libs directories, RUNPATH $ORIGIN) nor any of
// roots provides. It returns them sorted, each with the first file (relative to venv) that
// needs it.
func missingLibraries(venv string, roots []*os.Root) (map[string]string, error) {
	type linked struct {
		rel, dir string
		needed   []string
		runpath  []string
	}
	var files []linked
	inVenv := map[string]bool{}
	err := filepath.WalkDir(venv, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.Contains(d.Name(), ".so") {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxELFScan {
			return err
		}
		inVenv[d.Name()] = true
		f, err := elf.Open(p)
		if err != nil {
			return nil // not ELF: a file named like "x.so.py", say
		}
		defer f.Close()
		needed, _ := f.ImportedLibraries()
		var runpath []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			if vals, err := f.DynString(tag); err == nil {
				for _, v := range vals {
					runpath = append(runpath, strings.Split(v, ":")...)
				}
			}
		}
		rel, _ := filepath.Rel(venv, p)
		files = append(files, linked{rel: filepath.ToSlash(rel), dir: filepath.Dir(p), needed: needed, runpath: runpath})
		return nil
	})
	if err != nil {
		return nil, err
	}
	vr, err := os.OpenRoot(venv)
	if err != nil {
		return nil, err
	}
	defer vr.Close()
	missing := map[string]string{}
	for _, f := range files {
		for _, lib := range f.needed {
			if inVenv[lib] || inRunpath(vr, venv, f.dir, f.runpath, lib) || inRoots(roots, lib) {
				continue
			}
			if _, ok := missing[lib]; !ok {
				missing[lib] = f.rel
			}
		}
	}
	return missing, nil
}

// inRunpath reports whether lib is in one of the RUNPATH directories of a file in dir (an
// absolute host path inside the venv), of those that name a place in the venv by $ORIGIN.
// The lookup stays inside the venv: a RUNPATH cannot make pyship look at the host.
func inRunpath(venv *os.Root, venvDir, dir string, runpath []string, lib string) bool {
	origin, err := filepath.Rel(venvDir, dir)
	if err != nil {
		return false
	}
	for _, rp := range runpath {
		rest, ok := strings.CutPrefix(rp, "$ORIGIN")
		if !ok {
			rest, ok = strings.CutPrefix(rp, "${ORIGIN}")
		}
		if !ok {
			continue
		}
		p := filepath.Join(origin, rest, lib)
		if p == ".." || strings.HasPrefix(p, "../") || filepath.IsAbs(p) {
			continue
		}
		if _, err := venv.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

func inRoots(roots []*os.Root, lib string) bool {
	for _, r := range roots {
		for _, dir := range libDirs {
			// The name is enough: Debian's alternatives are absolute links, which a
			// lookup inside the root does not follow.
			if _, err := r.Lstat(path.Join(dir, lib)); err == nil {
				return true
			}
		}
	}
	return false
}

// owningPackages finds the Debian packages whose files (from dpkg's lists in root) include
// each library, in the library directories. It returns the packages, sorted, and the
// libraries no package holds.
func owningPackages(root *os.Root, libs []string) (pkgs, unowned []string, err error) {
	want := map[string]bool{}
	for _, l := range libs {
		want[l] = true
	}
	owner := map[string]string{}
	entries, err := fs.ReadDir(root.FS(), "var/lib/dpkg/info")
	if err != nil {
		return nil, libs, nil
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".list")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		data, err := readRegular(root, path.Join("var/lib/dpkg/info", e.Name()))
		if err != nil {
			continue
		}
		pkg, _, _ := strings.Cut(name, ":")
		for _, line := range strings.Split(string(data), "\n") {
			base := path.Base(line)
			if want[base] && isLibDir(path.Dir(strings.TrimPrefix(line, "/"))) {
				if _, seen := owner[base]; !seen {
					owner[base] = pkg
				}
			}
		}
	}
	set := map[string]bool{}
	for _, l := range libs {
		if p, ok := owner[l]; ok {
			set[p] = true
		} else {
			unowned = append(unowned, l)
		}
	}
	slices.Sort(unowned)
	return slices.Sorted(maps.Keys(set)), unowned, nil
}

func isLibDir(dir string) bool { return slices.Contains(libDirs, dir) }

// CheckPackages reports the first name that is not a Debian package name.
func CheckPackages(pkgs []string) error {
	for _, p := range pkgs {
		if !detect.IsDebianPackage(p) {
			return fmt.Errorf("%q is not a Debian package name", p)
		}
	}
	return nil
}

// installInBuilder runs the install once more in a builder, when the first attempt failed
// for want of a compiler or headers: the base (and system trees) with build-essential and
// the -dev packages the failure asks for, from the base's own apt, cached by base and
// packages. It returns the builder's tree and the venv.
func installInBuilder(ctx context.Context, p *plan.Plan, root string, baseDigest v1.Hash, req InstallRequest, failed *InstallError, scratch string, opts Options) (string, string, error) {
	rootFS, err := os.OpenRoot(root)
	if err != nil {
		return "", "", err
	}
	defer rootFS.Close()
	pkgs, projects := builderNeeds(failed.Output, p.Base.Python, rootFS)
	if pkgs == nil {
		return "", "", failed
	}
	log := opts.Logger
	what := "a source distribution"
	if len(projects) > 0 {
		what = strings.Join(projects, ", ")
	}
	log.Info("building from source needs a compiler: installing again in a builder", "for", what, "packages", strings.Join(pkgs, " "))
	start := time.Now()
	builder, err := systemTree(ctx, root, req.Over, systemKey("builder", baseDigest, req.Over, pkgs), pkgs, "a builder for "+what, opts)
	if err != nil {
		return "", "", err
	}
	log.Info("builder ready", "took", since(start))
	req.Over = append([]string{builder}, req.Over...)
	req.Scratch = filepath.Join(scratch, "2")
	if err := os.Mkdir(req.Scratch, 0o700); err != nil {
		return "", "", err
	}
	venv, err := opts.Installer.Install(ctx, req)
	var again *InstallError
	if errors.As(err, &again) {
		again.Builder = pkgs
		_, again.Unbuilt = builderNeeds(again.Output, "", rootFS)
		return "", "", again
	}
	return builder, venv, err
}

// oldBuildTools are what a source distribution's build prints when it was written for a
// build tool older than the one pip installs to build it, and the constraint that gives it
// the tool of its time: setuptools removed Feature in 46, use_2to3 in 58 and the test
// command in 72; Cython 3 broke the builds of PyYAML 5 and others (cython_sources).
// Each tool's entries are ordered strictest first.
var oldBuildTools = []struct {
	re         *regexp.Regexp
	tool       string
	constraint string
}{
	{regexp.MustCompile(`cannot import name '?Feature'? from '?setuptools`), "setuptools", "setuptools<46"},
	{regexp.MustCompile(`use_2to3 is invalid`), "setuptools", "setuptools<58"},
	{regexp.MustCompile(`No module named '?setuptools\.command\.test'?`), "setuptools", "setuptools<72"},
	{regexp.MustCompile(`AttributeError: cython_sources`), "cython", "cython<3"},
}

// buildToolConstraints returns the constraints a failed install's output asks for, one
// per tool, the strictest.
func buildToolConstraints(output string) []string {
	var out, tools []string
	for _, t := range oldBuildTools {
		if !slices.Contains(tools, t.tool) && t.re.MatchString(output) {
			out = append(out, t.constraint)
			tools = append(tools, t.tool)
		}
	}
	return out
}

// runtimePackages finds the shared libraries that the venv's ELF files link and that the
// image would lack (neither the venv, the base nor the system trees has them), and the
// Debian packages, installed in the builder, that hold them. A library no package holds is
// reported as a warning: the app fails to import that module.
func runtimePackages(venv, root string, system []string, builder string, opts Options) ([]string, error) {
	var roots []*os.Root
	defer func() {
		for _, r := range roots {
			r.Close()
		}
	}()
	for _, dir := range append(slices.Clone(system), root) {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		roots = append(roots, r)
	}
	missing, err := missingLibraries(venv, roots)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	libs := slices.Sorted(maps.Keys(missing))
	if builder == "" {
		for _, l := range libs {
			opts.Logger.Warn("a dependency links a library the image lacks; add the Debian package that has it to apt in pyship.toml", "library", l, "needed by", missing[l])
		}
		return nil, nil
	}
	b, err := os.OpenRoot(builder)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	pkgs, unowned, err := owningPackages(b, libs)
	if err != nil {
		return nil, err
	}
	for _, l := range unowned {
		opts.Logger.Warn("a dependency built from source links a library no Debian package in the builder holds; the image lacks it", "library", l, "needed by", missing[l])
	}
	if len(pkgs) > 0 {
		opts.Logger.Info("runtime libraries for what was built from source", "packages", strings.Join(pkgs, " "), "libraries", strings.Join(libs, " "))
	}
	return pkgs, nil
}

// runtimeSuffix names the file beside a cached dependency layer that lists the Debian
// packages its source builds link.
const runtimeSuffix = ".system"

func writeRuntimePackages(dir, key string, pkgs []string) error {
	return writeFileAtomic(filepath.Join(dir, key+runtimeSuffix), []byte(strings.Join(pkgs, "\n")))
}

func readRuntimePackages(dir, key string) ([]string, error) {
	data, err := readSmall(filepath.Join(dir, key+runtimeSuffix), 64<<10)
	if err != nil {
		return nil, err
	}
	pkgs := strings.Fields(string(data))
	if err := CheckPackages(pkgs); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// union merges package lists, sorted, without repeats.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
