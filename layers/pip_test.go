package layers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyship/pyship/pyindex"
)

func TestInstallErrorNamesTheCompilerError(t *testing.T) {
	out := strings.Join([]string{
		"Collecting psycopg2==2.8.3",
		"  Building wheel for psycopg2 (setup.py): started",
		"  gcc -pthread -fPIC -I/usr/include/postgresql -c psycopg/psycopgmodule.c -o build/psycopgmodule.o",
		"  psycopg/psycopgmodule.c:1009:5: error: 'PyEval_InitThreads' is deprecated",
		"  In file included from psycopg/psycopgmodule.c:28:",
		"  ./psycopg/psycopg.h:30:10: fatal error: libpq-fe.h: No such file or directory",
		"  psycopg/psycopgmodule.c:1009:5: error: 'PyEval_InitThreads' is deprecated",
	}, "\n") + strings.Repeat("\n  note: filler line", 20) + "\n  error: command '/usr/bin/gcc' failed with exit code 1\n  error: legacy-install-failure"
	msg := (&InstallError{Files: []string{"Pipfile.lock"}, Code: 1, Output: out, Builder: []string{"build-essential"}, Unbuilt: []string{"psycopg2"}}).Error()
	for _, want := range []string{
		"the build's first errors:",
		"psycopg/psycopgmodule.c:1009:5: error: 'PyEval_InitThreads' is deprecated",
		"fatal error: libpq-fe.h: No such file or directory",
		"error: legacy-install-failure", // pip's own tail is still there
		"hint: psycopg2 failed to build from source",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "PyEval_InitThreads"); n != 1 {
		t.Errorf("the same diagnostic is shown %d times, want once:\n%s", n, msg)
	}
	if strings.Index(msg, "fatal error") > strings.Index(msg, "legacy-install-failure") {
		t.Errorf("the compiler's errors come after pip's summary:\n%s", msg)
	}
}

func TestInstallErrorNamesTheBackendsException(t *testing.T) {
	out := "  Traceback (most recent call last):\n    File \"config.py\", line 777, in read_pep621_metadata\n      raise ConfigError(\n  flit_core.config.ConfigError: description must be specified under [project]\n  [end of output]\nERROR: Failed to build 'file:///app' when getting requirements to build wheel"
	msg := errorLines(out)
	if !strings.Contains(msg, "flit_core.config.ConfigError: description must be specified") || !strings.Contains(msg, "ERROR: Failed to build") {
		t.Errorf("errorLines = %s", msg)
	}
	if strings.Contains(msg, "raise ConfigError(") {
		t.Errorf("errorLines shows the traceback's code lines:\n%s", msg)
	}
}

func TestInstallErrorWithoutBuildErrorsIsUnchanged(t *testing.T) {
	msg := errorLines("Collecting nothing\nERROR: No matching distribution found for nothing")
	if strings.Contains(msg, "first errors") || msg != "  ERROR: No matching distribution found for nothing" {
		t.Errorf("errorLines = %q", msg)
	}
}

func TestInstallErrorStandardLibraryRequirement(t *testing.T) {
	out := "ERROR: Could not find a version that satisfies the requirement base64 (from versions: none)\nERROR: No matching distribution found for base64"
	e := &InstallError{Files: []string{"requirements.txt"}, Code: 1, Output: out, Where: "requirements.txt:4", Stdlib: stdlibRequirement(out)}
	msg := e.Error()
	if !strings.Contains(msg, "hint: base64 is a module of Python's standard library") || !strings.Contains(msg, "delete requirements.txt:4") {
		t.Errorf("message = %s", msg)
	}
	for _, name := range []string{"flask", "typing-extensions", "json5"} {
		if got := stdlibRequirement("ERROR: No matching distribution found for " + name); got != "" {
			t.Errorf("stdlibRequirement(%s) = %q, want none", name, got)
		}
	}
}

func TestStdlibLinesAreLeftOut(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"requirements.txt": "flask==3.1.3\nbase64\n# json\njson\nuuid==1.30\nrequests\n"})
	drop, err := stdlibLines(src, []string{"requirements.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if got := drop["requirements.txt"]; !slices.Equal(got, []int{2, 4, 5}) {
		t.Fatalf("stdlibLines = %v, want lines 2, 4, 5", drop)
	}
	out, err := copyInputs(src, []string{"requirements.txt"}, drop, filepath.Join(t.TempDir(), "in"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "flask==3.1.3\n# left out by pyship: base64\n# json\n# left out by pyship: json\n# left out by pyship: uuid==1.30\nrequests\n"
	if string(data) != want {
		t.Errorf("the install's copy:\n%s\nwant:\n%s", data, want)
	}
}

// TestUVFailures: uv's words for a requirement the index lacks, a version it lacks and a
// standard library module are read as pip's are, and its error shows with its causes.
func TestUVFailures(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"error: No solution found when resolving dependencies\n  cause: Because nosuchpkg-zzqq was not found in the package registry and you require nosuchpkg-zzqq==1.0, we can conclude that your requirements are unsatisfiable.", "nosuchpkg-zzqq"},
		{"  cause: Because there is no version of flask==99.0.0 and you require flask==99.0.0, we can conclude that your requirements are unsatisfiable.", "flask"},
		{"  cause: Because there is no version of uvicorn[standard]>=99 and you require uvicorn[standard]>=99, we can conclude", "uvicorn"},
		{"  cause: Because sqlite3 was not found in the package registry and you require sqlite3, we can conclude that your requirements are unsatisfiable.", "sqlite3"},
		{"ERROR: No matching distribution found for base64", "base64"},
		{"Resolved 3 packages", ""},
	} {
		if got := unmatched(tc.out); got != tc.want {
			t.Errorf("unmatched(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"requirements.txt": "Flask==3.0.0\n\nsqlite3\n"})
	out := "Using Python 3.11.7 environment at: /opt/venv\nerror: No solution found when resolving dependencies\n  cause: Because sqlite3 was not found in the package registry and you require sqlite3, we can conclude that your requirements are unsatisfiable.\n"
	e := &InstallError{Tool: "uv", Files: []string{"requirements.txt"}, Code: 1, Output: out,
		Where: failedRequirement(src, []string{"requirements.txt"}, out), Stdlib: stdlibRequirement(out)}
	msg := e.Error()
	for _, want := range []string{
		"requirements.txt:3: installing the dependencies in requirements.txt failed (uv exited with code 1)",
		"  error: No solution found when resolving dependencies\n    cause: Because sqlite3 was not found",
		"hint: sqlite3 is a module of Python's standard library",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Using Python") {
		t.Errorf("the message shows uv's chatter:\n%s", msg)
	}
	if got := unreachableIndex("error: Request failed after 3 retries in 6.8s\n  cause: Failed to fetch: http://127.0.0.1:9/simple/requests/"); got == "" {
		t.Errorf("uv's failed request does not read as an unreachable index")
	}
}

// TestDropUVState: uv's lock and the install time it records for a local project leave the
// venv, and its RECORD line with it; other metadata stays as it was.
func TestDropUVState(t *testing.T) {
	venv := t.TempDir()
	info := "lib/python3.13/site-packages/guestbook-0.1.0.dist-info/"
	writeFiles(t, venv, map[string]string{
		info + "uv_cache.json": `{"timestamp":{"secs_since_epoch":1795968957}}`,
		info + "RECORD":        "guestbook/__init__.py,sha256=AA,10\n" + "guestbook-0.1.0.dist-info/uv_cache.json,sha256=BB,45\n" + "guestbook-0.1.0.dist-info/RECORD,,\n",
		info + "METADATA":      "Name: guestbook\n",
		".lock":                "",
	})
	if err := dropUVState(venv); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{info + "uv_cache.json", ".lock"} {
		if _, err := os.Stat(filepath.Join(venv, gone)); err == nil {
			t.Errorf("%s is still there", gone)
		}
	}
	data, err := os.ReadFile(filepath.Join(venv, info, "RECORD"))
	if err != nil || string(data) != "guestbook/__init__.py,sha256=AA,10\nguestbook-0.1.0.dist-info/RECORD,,\n" {
		t.Errorf("RECORD = %q (%v)", data, err)
	}
}

// TestUVCannotRead: a requirements file uv cannot parse sends the install to pip; a
// requirement uv cannot satisfy does not.
func TestUVCannotRead(t *testing.T) {
	unreadable := "error: Error parsing included file in `requirements.txt` at position 76\n  cause: Couldn't parse requirement in `requirements/base.txt` at position 0\n  cause: Trailing `\\\n             ` is not allowed"
	if got := uvCannotRead(unreadable); !strings.HasPrefix(got, "error: Error parsing included file in `requirements.txt`") {
		t.Errorf("uvCannotRead = %q", got)
	}
	for _, out := range []string{
		"error: No solution found when resolving dependencies\n  cause: Because there is no version of flask==99 and you require flask==99, we can conclude that your requirements are unsatisfiable.",
		"error: Request failed after 3 retries in 6.8s",
	} {
		if got := uvCannotRead(out); got != "" {
			t.Errorf("uvCannotRead(%q) = %q, want none", out, got)
		}
	}
}

// TestDropUVStateStaysInTheVenv: a link the install planted in the venv does not lead the
// scrub to files outside it.
func TestDropUVStateStaysInTheVenv(t *testing.T) {
	venv, outside := t.TempDir(), t.TempDir()
	info := "python3.13/site-packages/evil-1.dist-info/"
	writeFiles(t, outside, map[string]string{info + "uv_cache.json": "{}", info + "RECORD": "evil-1.dist-info/uv_cache.json,sha256=A,2\n"})
	if err := os.Symlink(outside, filepath.Join(venv, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "lock"), filepath.Join(venv, ".lock")); err != nil {
		t.Fatal(err)
	}
	_ = dropUVState(venv)
	if _, err := os.Stat(filepath.Join(outside, info, "uv_cache.json")); err != nil {
		t.Errorf("a file outside the venv was removed: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, info, "RECORD")); string(data) != "evil-1.dist-info/uv_cache.json,sha256=A,2\n" {
		t.Errorf("a file outside the venv was rewritten: %q", data)
	}
}

// TestUVEnvLeavesTheIndexToTheRequirements: with no index named on the host, uv is given
// none, so an --index-url in a requirements file applies, as it does for pip; a host's
// index and extra indexes are passed on.
func TestUVEnvLeavesTheIndexToTheRequirements(t *testing.T) {
	if env := strings.Join(uvEnv([]string{pyindex.DefaultIndex}, false), "\n"); strings.Contains(env, "UV_DEFAULT_INDEX") || strings.Contains(env, "UV_INDEX=") {
		t.Errorf("uv is given an index the host does not name:\n%s", env)
	}
	env := uvEnv([]string{"https://mirror.example/simple", "https://extra.example/simple"}, true)
	for _, want := range []string{"UV_DEFAULT_INDEX=https://mirror.example/simple", "UV_INDEX=https://extra.example/simple", "UV_BUILD_CONSTRAINT=" + sandboxBuildConstraints} {
		if !slices.Contains(env, want) {
			t.Errorf("uv's environment lacks %s: %v", want, env)
		}
	}
}
