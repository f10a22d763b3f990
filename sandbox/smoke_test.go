package sandbox

import (
	"net/http"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		check   Check
		status  int
		header  http.Header
		body    string
		verdict string
		failure string
	}{
		{"any status below 500", Check{Path: "/"}, 404, nil, "", "pass", ""},
		{"server error", Check{Path: "/"}, 503, nil, "", "fail", FailStatus},
		{"exact status", Check{Path: "/", Status: 200}, 302, nil, "", "fail", FailStatus},
		{"body found", Check{Path: "/", Body: "ok"}, 200, nil, "all ok", "pass", ""},
		{"body missing", Check{Path: "/", Body: "ok"}, 200, nil, "nope", "fail", FailBody},
		{"header matches", Check{Path: "/", Headers: map[string]string{"Content-Type": "text/plain"}}, 200, http.Header{"Content-Type": {"text/plain"}}, "", "pass", ""},
		{"header differs", Check{Path: "/", Headers: map[string]string{"X-App": "shop"}}, 200, http.Header{"X-App": {"other"}}, "", "fail", FailHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{}
			r.judge(tc.check, &http.Response{StatusCode: tc.status, Header: tc.header}, tc.body)
			if r.Verdict != tc.verdict || r.Failure != tc.failure {
				t.Errorf("verdict %s (%s: %s), want %s (%s)", r.Verdict, r.Failure, r.Reason, tc.verdict, tc.failure)
			}
		})
	}
}

func TestLastException(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"traceback", []string{
			"Traceback (most recent call last):",
			`  File "/opt/venv/lib/python3.10/site-packages/falcon/util/structures.py", line 22, in <module>`,
			"    class CaseInsensitiveDict(collections.MutableMapping):",
			"AttributeError: module 'collections' has no attribute 'MutableMapping'",
			"[INFO] Worker exiting (pid: 15)",
			"[INFO] Reason: Worker failed to boot.",
		}, "AttributeError: module 'collections' has no attribute 'MutableMapping' (raised at /opt/venv/lib/python3.10/site-packages/falcon/util/structures.py:22)"},
		{"a module's own exception class", []string{"INFO: starting", "Traceback (most recent call last):", `  File "/app/settings.py", line 92, in <module>`, "    raise Exception(\"x\")", "Exception: DATABASE_URL environment variable not defined"},
			"Exception: DATABASE_URL environment variable not defined (raised at /app/settings.py:92)"},
		{"qualified name", []string{"Traceback (most recent call last):", "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must not be empty"}, "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must not be empty"},
		{"no traceback", []string{"INFO: listening on 8080", "Hello: bye"}, ""},
	} {
		if got := lastException(tc.lines); got != tc.want {
			t.Errorf("%s: lastException = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMissingEnv(t *testing.T) {
	for _, tc := range []struct{ exception, want string }{
		{"KeyError: 'SECRET_KEY' (raised at /app/settings.py:12)", "SECRET_KEY"},
		{"decouple.UndefinedValueError: DEBUG not found. Declare it as envvar or define a default value. (raised at /opt/venv/lib/python3.12/site-packages/decouple.py:92)", "DEBUG"},
		{`environs.EnvError: Environment variable "API_TOKEN" not set`, "API_TOKEN"},
		{"django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty. (raised at x.py:1)", "SECRET_KEY"},
		{"Exception: DATABASE_URL environment variable not defined (raised at /app/mysite/settings.py:97)", "DATABASE_URL"},
		{"RuntimeError: environment variable 'OPENAI_API_KEY' is missing", "OPENAI_API_KEY"},
		{"django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not found in environment variables (raised at /app/mysite/settings.py:31)", "SECRET_KEY"},
		{"KeyError: 'name'", ""},
		{"ModuleNotFoundError: No module named 'auth'", ""},
	} {
		if got := missingEnv(tc.exception); got != tc.want {
			t.Errorf("missingEnv(%q) = %q, want %q", tc.exception, got, tc.want)
		}
	}
}

func TestLastExceptionOfALongTraceback(t *testing.T) {
	lines := []string{
		`  File "<frozen importlib._bootstrap>", line 488, in _call_with_frames_removed`,
		`  File "/app/mysite/settings.py", line 31, in <module>`,
		`    raise ImproperlyConfigured("SECRET_KEY is not found in environment variables")`,
		`django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not found in environment variables`,
		`[2026-11-29 12:07:49 +0000] [15] [INFO] Worker exiting (pid: 15)`,
		`[2026-11-29 12:07:50 +0000] [9] [ERROR] Reason: Worker failed to boot.`,
	}
	want := "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not found in environment variables (raised at /app/mysite/settings.py:31)"
	if got := lastException(lines); got != want {
		t.Errorf("lastException = %q, want %q", got, want)
	}
	if got := lastException([]string{"[INFO] Booting worker", "Listening at: http://0.0.0.0:8080"}); got != "" {
		t.Errorf("lastException of no traceback = %q", got)
	}
}

// TestEnvHintForAnEmptySetting checks that a Django setting left empty is not taken for a
// variable of its name: the settings may read it from any variable.
func TestEnvHintForAnEmptySetting(t *testing.T) {
	e := "django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty."
	if h := envHint(e, missingEnv(e)); !strings.Contains(h, "the settings leave SECRET_KEY empty") || strings.Contains(h, "--env SECRET_KEY=") {
		t.Errorf("hint %q", h)
	}
	e = "KeyError: 'SECRET_KEY'"
	if h := envHint(e, missingEnv(e)); !strings.Contains(h, "--env SECRET_KEY=VALUE") {
		t.Errorf("hint %q", h)
	}
}
