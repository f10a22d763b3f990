package detect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16Bytes encodes s as UTF-16 with a byte order mark, as Windows editors save it.
func utf16Bytes(s string, bigEndian bool) string {
	var b []byte
	put := func(u uint16) {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	put(0xfeff)
	for _, u := range utf16.Encode([]rune(s)) {
		put(u)
	}
	return string(b)
}

func TestRequirementsEncodings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  string
		names []string
		err   []string
	}{
		{name: "utf-8", data: "flask==3.1\ngunicorn\n", names: []string{"flask", "gunicorn"}},
		{name: "utf-8 with bom", data: "\ufeffflask==3.1\r\ngunicorn\r\n", names: []string{"flask", "gunicorn"}},
		{name: "utf-16 le with bom", data: utf16Bytes("flask==3.1\r\n# café\r\ngunicorn\r\n", false), names: []string{"flask", "gunicorn"}},
		{name: "utf-16 be with bom", data: utf16Bytes("flask==3.1\ngunicorn\n", true), names: []string{"flask", "gunicorn"}},
		{name: "latin-1 declared", data: "# -*- coding: latin-1 -*-\n# caf\xe9\nflask\n", names: []string{"flask"}},
		{name: "latin-1 undeclared", data: "flask\n# caf\xe9\n", err: []string{"requirements.txt:2", "not UTF-8", "0xe9", "hint:", "UTF-8"}},
		{name: "utf-16 without bom", data: "f\x00l\x00a\x00s\x00k\x00\n\x00", err: []string{"requirements.txt:1", "UTF-16", "byte order mark"}},
		{name: "nul bytes", data: "flask\x00\n", err: []string{"requirements.txt:1", "NUL"}},
		{name: "utf-32", data: "\xff\xfe\x00\x00f\x00\x00\x00", err: []string{"requirements.txt", "UTF-32", "UTF-8"}},
		{name: "utf-16 odd length", data: "\xff\xfef\x00l", err: []string{"requirements.txt", "UTF-16", "odd"}},
		{name: "declared encoding pyship cannot read", data: "# coding: shift_jis\nflask\n", err: []string{"requirements.txt:1", `"shift_jis"`, "UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(map[string]string{"app.py": seedApp, "requirements.txt": tc.data}), Options{})
			if tc.err != nil {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("got %v, want a *detect.Error", err)
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Dependencies.Names, tc.names) {
				t.Errorf("names %v, want %v", res.Dependencies.Names, tc.names)
			}
		})
	}
}

func TestPythonVersionWithBOM(t *testing.T) {
	for _, tc := range []struct {
		name, file, data string
	}{
		{"python-version utf-8 bom", ".python-version", "\ufeff3.12\n"},
		{"runtime.txt utf-8 bom", "runtime.txt", "\ufeffpython-3.12.1\r\n"},
		{"python-version utf-16", ".python-version", utf16Bytes("3.12\r\n", false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(map[string]string{"app.py": seedApp, "requirements.txt": "flask\n", tc.file: tc.data}), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Python.Value != "3.12" {
				t.Errorf("python %+v", res.Python)
			}
		})
	}
}

func TestProcfile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   string
		start  []string
		source string
		warned []string
		err    []string
	}{
		{name: "plain", data: "web: gunicorn app:app\nworker: celery -A app\n", start: sh("gunicorn app:app"), source: "Procfile:1"},
		{name: "utf-8 bom", data: "\ufeffweb: gunicorn app:app\r\n", start: sh("gunicorn app:app"), source: "Procfile:1"},
		{name: "utf-16 bom", data: utf16Bytes("web: gunicorn app:app\r\n", false), start: sh("gunicorn app:app"), source: "Procfile:1"},
		{name: "comments and blank lines", data: "# processes\n\nweb: gunicorn app:app\n", start: sh("gunicorn app:app"), source: "Procfile:3"},
		{name: "garbage line warned", data: "web: gunicorn app:app\nthis is not a process\n", start: sh("gunicorn app:app"), source: "Procfile:1",
			warned: []string{"Procfile:2", `"this is not a process"`, "name: command"}},
		{name: "no web process", data: "worker: celery -A app\n", start: sh(`gunicorn 'app:app' --bind "0.0.0.0:$PORT"`), source: "app.py:2"},
		{name: "nothing valid", data: "gunicorn app:app\n", err: []string{"Procfile:1", "name: command"}},
		{name: "binary", data: "\x01\x02\x1b[2J\n", err: []string{"Procfile:1", `\x1b`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(map[string]string{"app.py": seedApp, "requirements.txt": "flask\ngunicorn\n", "Procfile": tc.data}), Options{})
			if tc.err != nil {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("got %v, want a *detect.Error", err)
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "\x1b") {
					t.Errorf("error %q holds a raw escape character", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, tc.start) || res.Start.Source != tc.source {
				t.Errorf("start %q from %s, want %q from %s", res.Start.Command, res.Start.Source, tc.start, tc.source)
			}
			warned := strings.Join(res.Warnings, "\n")
			for _, want := range tc.warned {
				if !strings.Contains(warned, want) {
					t.Errorf("warnings %q do not mention %q", warned, want)
				}
			}
			if tc.warned == nil && strings.Contains(warned, "Procfile") {
				t.Errorf("unexpected warnings %q", warned)
			}
		})
	}
}
