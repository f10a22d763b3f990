package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedFiles adds every fixture file with one of the given names to the corpus.
func seedFiles(f *testing.F, names ...string) {
	f.Helper()
	for _, name := range names {
		matches, _ := filepath.Glob(filepath.Join("..", "fixtures", "*", name))
		more, _ := filepath.Glob(filepath.Join("..", "fixtures", "*", "*", "*", name))
		for _, m := range append(matches, more...) {
			data, err := os.ReadFile(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

func FuzzParseRequirements(f *testing.F) {
	seedFiles(f, "requirements.txt", "requirements/*.txt")
	for _, s := range []string{"-r base.txt\n", "flask[async]>=3 ; python_version > '3.8' --hash=sha256:ab\n", "-e git+https://x/y#egg=z\n", "a \\\n b\n", "--index-url=https://x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := ParseRequirements("requirements.txt", data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a *detect.Error", err)
			}
			return
		}
		for _, r := range rf.Requirements {
			if r.Line < 1 || r.Text == "" {
				t.Fatalf("requirement %+v", r)
			}
		}
	})
}

func FuzzParseProcfile(f *testing.F) {
	seedFiles(f, "Procfile")
	f.Add([]byte("web: a\nweb: b\n"))
	f.Add([]byte("web:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParseProcfile(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a *detect.Error", err)
			}
			return
		}
		if pf.WebLine > 0 && pf.Web == "" {
			t.Fatalf("web process on line %d with no command", pf.WebLine)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	seedFiles(f, "pyship.toml", "pyproject.toml")
	f.Add([]byte("python = \"3.12\"\nstart = [\"a\"]\n[smoke]\ntimeout = \"5s\"\n"))
	f.Add([]byte("[tool.pyship]\nprot = 1\n"))
	f.Add([]byte("x = " + strings.Repeat("{a = ", 70) + "1" + strings.Repeat("}", 70) + "\n"))
	f.Add([]byte("x = " + strings.Repeat("[", 70) + "]\nstart = \"[[[[\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseConfig(ConfigFile, data, nil)
		_, _ = parseConfig("pyproject.toml", data, []string{"tool", "pyship"})
	})
}

func FuzzLockFiles(f *testing.F) {
	for _, name := range LockFiles {
		seedFiles(f, name)
	}
	f.Add([]byte("version = 1\nx = " + strings.Repeat("{a = ", 70) + "1" + strings.Repeat("}", 70) + "\n"))
	f.Add([]byte(`{"default": ` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}"))
	f.Add([]byte("lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nmarker = \"" + strings.Repeat("(", 70) + "extra == 'x'" + strings.Repeat(")", 70) + "\"\n"))
	// Locks that pyship reads by walking their dependency graph: Poetry 1.5-1.8 and PDM
	// without groups, with extras, a name at two versions, and a cycle.
	f.Add([]byte("[[package]]\nname = \"a\"\nversion = \"1\"\nfiles = [{file = \"a\", hash = \"sha256:0\"}]\n[package.dependencies]\n" +
		"b = [{version = \"<2\", markers = \"python_version < '3.10'\"}, {version = \">=2\", extras = [\"x\"]}]\n" +
		"[[package]]\nname = \"b\"\nversion = \"2\"\nfiles = [{file = \"b\", hash = \"sha256:1\"}]\n[package.dependencies]\n" +
		"a = \"*\"\nc = {version = \"*\", optional = true, markers = \"extra == 'x'\"}\n[package.extras]\nx = [\"c (>=1)\"]\n" +
		"[[package]]\nname = \"c\"\nversion = \"1\"\n[metadata]\nlock-version = \"2.0\"\n[metadata.files]\nc = [{file = \"c\", hash = \"sha256:2\"}]\n"))
	f.Add([]byte("[metadata]\nlock_version = \"4.2\"\n[[package]]\nname = \"b\"\nversion = \"2\"\nextras = [\"x\"]\ndependencies = [\"b==2\", \"a>=1; extra == 'y'\"]\n" +
		"[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\"b[x]\"]\n[metadata.files]\n\"a 1\" = [{file = \"a\", hash = \"sha256:0\"}]\n\"b[x] 2\" = [{url = \"https://x/b\", hash = \"sha256:1\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A project whose main dependencies are the roots of those walks.
		proj := &project{pep621: true, scripts: map[string]string{}, pyproject: []byte("[project]\nname = \"p\"\ndependencies = [\"a\", \"b[x]>=1\"]\n")}
		for _, parse := range []func() (*Lock, error){
			func() (*Lock, error) { return parsePylock(data) },
			func() (*Lock, error) { return parseUVLock(data, proj) },
			func() (*Lock, error) { return parsePoetryLock(data, proj) },
			func() (*Lock, error) { return parsePDMLock(data, proj) },
			func() (*Lock, error) { return parsePipfileLock(data, proj) },
		} {
			l, err := parse()
			if err != nil {
				continue
			}
			for _, p := range l.Packages {
				if len(p.Hashes) == 0 {
					t.Fatalf("package %s without hashes", p.Name)
				}
			}
		}
	})
}

func FuzzMarker(f *testing.F) {
	for _, s := range []string{`python_version >= "3.9" and (sys_platform == 'linux' or extra == "x")`, `'dev' in dependency_groups`, `a not in 'b'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMarker(s)
		if err != nil {
			return
		}
		// What pyship writes back must parse again to the same text.
		out := decide(m, map[string]bool{"x": true}, nil).String()
		if strings.TrimSpace(out) == "" {
			t.Fatalf("%q decided to nothing", s)
		}
		if _, err := parseMarker(out); err != nil && out != "true" && out != "false" {
			t.Fatalf("%q became %q, which does not parse: %v", s, out, err)
		}
	})
}

func FuzzSpecifier(f *testing.F) {
	for _, s := range []string{">=3.9,<3.13", "^3.11", "~=3.11.2", "==3.12.*", "!=3.13.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpecifier(s)
		if err != nil {
			return
		}
		if m, ok := spec.Newest(); ok && !spec.AllowsMinor(m) {
			t.Fatalf("Newest %s is not allowed by %q", m, s)
		}
	})
}
