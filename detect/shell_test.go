package detect

import (
	"context"
	"slices"
	"testing"
)

func TestExecLast(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want string
	}{
		{"one command", `gunicorn app:app --bind 0.0.0.0:$PORT`, `exec gunicorn app:app --bind 0.0.0.0:$PORT`},
		{"and list runs whole", `python manage.py migrate && python manage.py collectstatic --noinput && gunicorn mysite.wsgi`,
			`python manage.py migrate && python manage.py collectstatic --noinput && exec gunicorn mysite.wsgi`},
		{"semicolon list", `./prepare.sh; uvicorn main:app`, `./prepare.sh; exec uvicorn main:app`},
		{"already exec", `exec gunicorn app:app`, `exec gunicorn app:app`},
		{"or list left alone", `python migrate.py || true`, `python migrate.py || true`},
		{"pipe left alone", `gunicorn app:app 2>&1 | tee log`, `gunicorn app:app 2>&1 | tee log`},
		{"background job left alone", `worker & gunicorn app:app`, `worker & gunicorn app:app`},
		{"subshell left alone", `(cd src && gunicorn app:app)`, `(cd src && gunicorn app:app)`},
		{"redirect is not a job", `gunicorn app:app 2>&1`, `exec gunicorn app:app 2>&1`},
		{"quoted separators are words", `sh -c 'a && b'`, `exec sh -c 'a && b'`},
		{"double-quoted separators", `echo "a; b" && gunicorn x`, `echo "a; b" && exec gunicorn x`},
		{"command substitution", `gunicorn app:app --workers $(nproc) && true`, `gunicorn app:app --workers $(nproc) && exec true`},
		{"substitution with separators", `gunicorn x --workers $(nproc; echo) `, `exec gunicorn x --workers $(nproc; echo) `},
		{"assignments go through env", `FOO="a b" BAR=1 gunicorn app:app`, `exec env FOO="a b" BAR=1 gunicorn app:app`},
		{"only assignments", `FOO=1`, `FOO=1`},
		{"cd last is a built-in", `gunicorn x && cd /`, `gunicorn x && cd /`},
		{"cd first", `cd src && gunicorn app:app`, `cd src && exec gunicorn app:app`},
		{"trailing separator", `gunicorn app:app;`, `gunicorn app:app;`},
		{"comment", `gunicorn app:app # the server`, `exec gunicorn app:app # the server`},
		{"hash inside a word", `gunicorn a#b`, `exec gunicorn a#b`},
		{"if", `if true; then gunicorn x; fi`, `if true; then gunicorn x; fi`},
		{"here-document", "cat <<EOF\nx\nEOF", "cat <<EOF\nx\nEOF"},
		{"two lines", "a\nb", "a\nb"},
		{"unclosed quote", `gunicorn 'x`, `gunicorn 'x`},
		{"escaped separator", `echo a\;b`, `exec echo a\;b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := execLast(tc.line); got != tc.want {
				t.Errorf("execLast(%q) = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestCompoundStartRunsWhole checks both places a user writes a command line.
func TestCompoundStartRunsWhole(t *testing.T) {
	const line = "python manage.py migrate && gunicorn app:app"
	want := []string{"/bin/sh", "-c", "python manage.py migrate && exec gunicorn app:app"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		from  string
	}{
		{"procfile", map[string]string{"Procfile": "web: " + line + "\n", "requirements.txt": "flask\ngunicorn\n", "app.py": "from flask import Flask\napp = Flask(__name__)\n"}, "Procfile:1"},
		{"pyship.toml", map[string]string{"pyship.toml": "start = \"" + line + "\"\n", "requirements.txt": "flask\ngunicorn\n", "app.py": "from flask import Flask\napp = Flask(__name__)\n"}, "pyship.toml:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, want) || res.Start.Source != tc.from {
				t.Errorf("start %q from %s, want %q from %s", res.Start.Command, res.Start.Source, want, tc.from)
			}
		})
	}
}

func TestUnquote(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "gunicorn", "gunicorn"},
		{"single", "'a b'", "a b"},
		{"double", `"a"b`, "ab"},
		{"escape", `a\ b`, "a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unquote(tc.in); got != tc.want {
				t.Errorf("unquote(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
