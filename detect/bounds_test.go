package detect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// within fails the test if f takes longer than d: hostile input must not make a parser
// run for minutes or exhaust memory.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not finish within %s", d)
	}
}

// nested writes depth levels of inline tables (or arrays) around a value.
func nested(depth int, array bool) string {
	if array {
		return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth)
	}
	return strings.Repeat("{a = ", depth) + "1" + strings.Repeat("}", depth)
}

func TestParsersRefuseDeepNesting(t *testing.T) {
	uv := fixtureFS(t, "uv-lock", nil)
	uvPyproject := string(uv["pyproject.toml"].Data)
	for _, tc := range []struct {
		name    string
		fixture string // "" for an app.py repository
		files   map[string]string
		want    []string
	}{
		{name: "pyship.toml inline tables", files: map[string]string{"pyship.toml": "python = \"3.12\"\n\nx = " + nested(100, false) + "\n"},
			want: []string{"pyship.toml:3", "nested more than 64 levels"}},
		{name: "pyship.toml arrays", files: map[string]string{"pyship.toml": "start = " + nested(65, true) + "\n"},
			want: []string{"pyship.toml:1", "nested more than 64 levels"}},
		{name: "pyship.toml a million levels", files: map[string]string{"pyship.toml": "x = " + nested(500_000, false) + "\n"},
			want: []string{"pyship.toml:1", "nested more than 64 levels"}},
		{name: "pyproject.toml", files: map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nversion = \"1\"\n[tool.other]\nx = " + nested(200, true) + "\n"},
			want: []string{"pyproject.toml:5", "nested"}},
		{name: "Pipfile", files: map[string]string{"Pipfile": "[packages]\nflask = " + nested(100, false) + "\n"},
			want: []string{"Pipfile:2", "nested"}},
		{name: "uv.lock", fixture: "uv-lock", files: map[string]string{"uv.lock": string(uv["uv.lock"].Data) + "\n[x]\ny = " + nested(100_000, false) + "\n", "pyproject.toml": uvPyproject},
			want: []string{"uv.lock:", "nested"}},
		{name: "poetry.lock", fixture: "poetry-lock", files: map[string]string{"poetry.lock": "x = " + nested(100_000, true) + "\n"},
			want: []string{"poetry.lock:1", "nested"}},
		{name: "pylock.toml", fixture: "pylock", files: map[string]string{"pylock.toml": "lock-version = \"1.0\"\nx = " + nested(100, false) + "\n"},
			want: []string{"pylock.toml:2", "nested"}},
		{name: "Pipfile.lock", fixture: "pipenv-lock", files: map[string]string{"Pipfile.lock": "{\"default\": {}, \"x\":\n" + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}"},
			want: []string{"Pipfile.lock:2", "nested"}},
		{name: "marker nested in parentheses", fixture: "pylock", files: map[string]string{"pylock.toml": "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nmarker = \"" +
			strings.Repeat("(", 1_000) + "extra == 'x'" + strings.Repeat(")", 1_000) + "\"\nwheels = [{ url = \"https://x/a.whl\", hashes = { sha256 = \"aa\" } }]\n"},
			want: []string{"pylock.toml", "marker", "nested"}},
		{name: "marker too long", fixture: "pylock", files: map[string]string{"pylock.toml": "lock-version = \"1.0\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nmarker = \"" +
			strings.Repeat("python_version == '3.1' or ", 100_000) + "extra == 'x'\"\nwheels = [{ url = \"https://x/a.whl\", hashes = { sha256 = \"aa\" } }]\n"},
			want: []string{"pylock.toml", "marker", "longer than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fsys = files(map[string]string{"app.py": seedApp})
			if tc.fixture != "" {
				fsys = fixtureFS(t, tc.fixture, nil)
			}
			for k, v := range tc.files {
				fsys[k] = files(map[string]string{k: v})[k]
			}
			var err error
			within(t, 5*time.Second, func() { _, err = Detect(context.Background(), fsys, Options{}) })
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// Brackets in strings and comments are not nesting.
func TestNestingIgnoresStringsAndComments(t *testing.T) {
	deep := strings.Repeat("[{", 100)
	for _, tc := range []struct {
		name, doc string
	}{
		{"basic string", "start = \"echo " + deep + "\"\n"},
		{"escaped quote", "start = \"echo \\\" " + deep + "\"\n"},
		{"literal string", "start = 'echo " + deep + "'\n"},
		{"multi-line basic", "start = \"\"\"echo\n" + deep + "\n\"\"\"\n"},
		{"multi-line literal", "start = '''echo\n" + deep + "\n'''\n"},
		{"comment", "# " + deep + "\nstart = \"echo\"\n"},
		{"quoted key", "[env]\n\"" + deep + "\" = \"x\"\n"},
		{"sixty-four levels", "x = " + nested(64, true) + "\nstart = \"echo\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkNesting(ConfigFile, []byte(tc.doc), false); err != nil {
				t.Error(err)
			}
		})
	}
}

// Work that grows with the square of the input stays linear.
func TestParsersAreLinear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"requirements joined by a million backslashes", map[string]string{"requirements.txt": "flask \\\n" + strings.Repeat("\\\n", 1_500_000) + "\n"}},
		{"pyship.toml with a hundred thousand env keys", map[string]string{"pyship.toml": "[env]\n" + func() string {
			var b strings.Builder
			for i := range 100_000 {
				fmt.Fprintf(&b, "K%d = \"v\"\n", i)
			}
			return b.String()
		}()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := files(map[string]string{"app.py": seedApp, "requirements.txt": "flask\n"})
			for k, v := range tc.files {
				fsys[k] = files(map[string]string{k: v})[k]
			}
			within(t, 10*time.Second, func() {
				if _, err := Detect(context.Background(), fsys, Options{}); err != nil {
					t.Error(err)
				}
			})
		})
	}
}
