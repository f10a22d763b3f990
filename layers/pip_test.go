package layers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
