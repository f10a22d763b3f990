package layers

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuilderNeeds(t *testing.T) {
	root := t.TempDir()
	local := t.TempDir()
	if err := os.MkdirAll(filepath.Join(local, "usr/local/include/python3.12"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(local, "usr/local/include/python3.12/Python.h"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, output, python string
		root                 string
		pkgs, projects       []string
	}{
		{
			// numpy's distutils says so when there is no compiler to link with.
			name: "numpy without a compiler",
			output: `Collecting numpy==1.16.3 (from -r requirements.txt (line 4))
  Preparing metadata (setup.py): finished with status 'error'
        RuntimeError: Broken toolchain: cannot link a simple C program
  error: metadata-generation-failed

  × Encountered error while generating package metadata.
  ╰─> numpy
`,
			python: "3.12", root: local,
			pkgs:     []string{"build-essential", "pkg-config"},
			projects: []string{"numpy"},
		},
		{
			name: "curl-config",
			output: `Collecting pycurl (from -r requirements.txt (line 1))
  Downloading pycurl-7.45.1.tar.gz (233 kB)
  Getting requirements to build wheel: finished with status 'error'
      __main__.ConfigurationError: Could not run curl-config: [Errno 2] No such file or directory: 'curl-config'
ERROR: Failed to build 'pycurl' when getting requirements to build wheel
`,
			python: "3.14", root: root,
			pkgs:     []string{"build-essential", "libcurl4-openssl-dev", "libssl-dev", "pkg-config", "python3.14-dev"},
			projects: []string{"pycurl"},
		},
		{
			name: "pg_config, Debian's Python",
			output: `Collecting psycopg2==2.9.13
  Downloading psycopg2-2.9.13.tar.gz (384 kB)
  Getting requirements to build wheel: started
  error: subprocess-exited-with-error
  Error: pg_config executable not found.
`,
			python: "3.14", root: root,
			pkgs:     []string{"build-essential", "libpq-dev", "pkg-config", "python3.14-dev"},
			projects: []string{"psycopg2"},
		},
		{
			name: "no compiler, headers in /usr/local",
			output: `Building wheel for uvloop (pyproject.toml): finished with status 'error'
  error: command 'gcc' failed: No such file or directory
  ERROR: Failed building wheel for uvloop
Failed to build uvloop
`,
			python: "3.12", root: local,
			pkgs:     []string{"build-essential", "pkg-config"},
			projects: []string{"uvloop"},
		},
		{
			name:   "lxml by name",
			output: "x86_64-linux-gnu-gcc: not found\nERROR: Failed building wheel for lxml\n",
			python: "3.12", root: local,
			pkgs:     []string{"build-essential", "libxml2-dev", "libxslt1-dev", "pkg-config"},
			projects: []string{"lxml"},
		},
		{
			name:   "pip 24.1's summary names several",
			output: "error: command 'gcc' failed: No such file or directory\nERROR: Failed to build installable wheels for some pyproject.toml based projects (mysqlclient, uvloop)\n",
			python: "3.12", root: local,
			pkgs:     []string{"build-essential", "default-libmysqlclient-dev", "pkg-config"},
			projects: []string{"mysqlclient", "uvloop"},
		},
		{
			name:   "a legacy install names its package at the end",
			output: "Collecting psycopg2==2.8.3\nCollecting werkzeug==0.15.4\n  error: command '/usr/bin/gcc' failed with exit code 1\n  error: legacy-install-failure\n\n  × Encountered error while trying to install package.\n  ╰─> psycopg2\n",
			python: "3.12", root: local,
			pkgs:     []string{"build-essential", "libpq-dev", "pkg-config"},
			projects: []string{"psycopg2"},
		},
		{
			name:   "a build that fails for another reason",
			output: "ValueError: No file/folder found for package rocky-wheels\nERROR: Failed building wheel for rocky-wheels\nFailed to build rocky-wheels\n",
			python: "3.12", root: local,
		},
		{
			name:   "not a compile failure",
			output: "ERROR: No matching distribution found for flask==99\n",
			python: "3.12", root: local,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := os.OpenRoot(tc.root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pkgs, projects := builderNeeds(tc.output, tc.python, r)
			if !slices.Equal(pkgs, tc.pkgs) || !slices.Equal(projects, tc.projects) {
				t.Errorf("builderNeeds = %q %q, want %q %q", pkgs, projects, tc.pkgs, tc.projects)
			}
		})
	}
}

// TestRuntimeLibraries reads a real ELF file's dynamic section (this machine's ls, named
// like an extension module): it links libselinux, which a root holding only libc lacks, and
// which a dpkg list attributes to a package.
func TestRuntimeLibraries(t *testing.T) {
	data, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	venv := t.TempDir()
	mod := filepath.Join(venv, "lib/python3/site-packages/_ls.so")
	if err := os.MkdirAll(filepath.Dir(mod), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, data, 0o644); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "usr/lib/x86_64-linux-gnu"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "usr/lib/x86_64-linux-gnu/libc.so.6"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// lib -> usr/lib, as in a merged-/usr Debian.
	if err := os.Symlink("usr/lib", filepath.Join(base, "lib")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	missing, err := missingLibraries(venv, []*os.Root{r})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := missing["libc.so.6"]; ok {
		t.Errorf("libc.so.6 is in the root, but reported missing: %v", missing)
	}
	if missing["libselinux.so.1"] != "lib/python3/site-packages/_ls.so" {
		t.Fatalf("missing = %v, want libselinux.so.1 needed by the module", missing)
	}

	builder := t.TempDir()
	info := filepath.Join(builder, "var/lib/dpkg/info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	lists := map[string]string{
		"libssl3:amd64.list":    "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n/usr/lib/x86_64-linux-gnu/libcrypto.so.3\n",
		"libssl-dev:amd64.list": "/usr/include/openssl/ssl.h\n/usr/lib/x86_64-linux-gnu/libssl.so\n",
		"not-a-lib:amd64.list":  "/usr/share/doc/libssl.so.3\n",
		"libssl3:amd64.md5sums": "x\n",
	}
	for name, text := range lists {
		if err := os.WriteFile(filepath.Join(info, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.OpenRoot(builder)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pkgs, unowned, err := owningPackages(b, []string{"libcrypto.so.3", "libssl.so.3", "libnowhere.so.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pkgs, []string{"libssl3"}) || !slices.Equal(unowned, []string{"libnowhere.so.1"}) {
		t.Errorf("owningPackages = %q, unowned %q", pkgs, unowned)
	}
}

type fakeEntry struct{ fs.DirEntry }

func (fakeEntry) Type() fs.FileMode { return 0 }

func TestSystemSkip(t *testing.T) {
	for rel, skip := range map[string]bool{
		"var/lib/apt/lists": true, "var/log": true, "var/cache": true, "var/lib/dpkg/status-old": true,
		"var/lib/dpkg/status": false, "usr/lib/x86_64-linux-gnu/libpq.so.5": false, "etc/ld.so.cache": false,
	} {
		if got := systemSkip(rel, fakeEntry{}); got != skip {
			t.Errorf("systemSkip(%q) = %v, want %v", rel, got, skip)
		}
	}
	if !strings.Contains((&AptError{Packages: []string{"x"}, Purpose: "the image", Code: 127}).Error(), "no apt-get") {
		t.Error("an AptError with exit code 127 does not say the base has no apt-get")
	}
}

func TestBuildToolConstraints(t *testing.T) {
	for _, tc := range []struct {
		output string
		want   []string
	}{
		{"  ImportError: cannot import name 'Feature' from 'setuptools' (/tmp/pip-build-env/lib/setuptools/__init__.py)", []string{"setuptools<46"}},
		{"error in anyjson setup command: use_2to3 is invalid.\nImportError: cannot import name 'Feature' from 'setuptools'", []string{"setuptools<46"}},
		{"ModuleNotFoundError: No module named 'setuptools.command.test'", []string{"setuptools<72"}},
		{"      AttributeError: cython_sources\nerror in x: use_2to3 is invalid", []string{"setuptools<58", "cython<3"}},
		{"fatal error: Python.h: No such file or directory", nil},
	} {
		if got := buildToolConstraints(tc.output); !slices.Equal(got, tc.want) {
			t.Errorf("buildToolConstraints(%q) = %q, want %q", tc.output, got, tc.want)
		}
	}
}
