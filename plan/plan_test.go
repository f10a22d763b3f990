package plan

import (
	"cmp"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/detect"
)

func TestMirror(t *testing.T) {
	for _, tc := range []struct {
		name, ref, mirror, want string
	}{
		{"official short", "python:3.11-slim", "", "docker.io/library/python:3.11-slim"},
		{"official mirrored", "python:3.11-slim", "127.0.0.1:5000", "127.0.0.1:5000/library/python:3.11-slim"},
		{"mirror with path", "python:3.11-slim", "mirror.example.com/dockerhub/", "mirror.example.com/dockerhub/library/python:3.11-slim"},
		{"user repo", "someone/python:3.11", "m.example.com", "m.example.com/someone/python:3.11"},
		{"explicit docker.io", "docker.io/library/python:3.12", "m.example.com", "m.example.com/library/python:3.12"},
		{"index.docker.io", "index.docker.io/python:3.12", "", "docker.io/library/python:3.12"},
		{"other registry untouched", "ghcr.io/org/py:1", "m.example.com", "ghcr.io/org/py:1"},
		{"localhost registry untouched", "localhost:5000/py:1", "m.example.com", "localhost:5000/py:1"},
		{"digest kept", "python@sha256:" + strings.Repeat("a", 64), "m.example.com", "m.example.com/library/python@sha256:" + strings.Repeat("a", 64)},
		{"no tag", "python", "", "docker.io/library/python"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Mirror(tc.ref, tc.mirror)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Mirror(%q, %q) = %q, want %q", tc.ref, tc.mirror, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "Python:3.11", "docker.io/"} {
		if got, err := Mirror(bad, ""); err == nil {
			t.Errorf("Mirror(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNew(t *testing.T) {
	res := &detect.Result{
		Python:       detect.Fact{Value: "3.11", Source: ".python-version:1"},
		Dependencies: detect.Dependencies{Source: "requirements.txt", Requirements: []string{"requirements.txt"}},
		Start:        detect.Start{Command: []string{"python", "app.py"}, Source: "app.py:8", Reason: "main block"},
		Port:         detect.Port{Number: 5000, Source: "app.py:9", HardCoded: true},
		Warnings:     []string{"w"},
	}
	p, err := New(res, Options{BaseMirror: "127.0.0.1:5000", Platform: "linux/amd64", Revision: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Base.Ref != "127.0.0.1:5000/library/python:3.11-slim" || p.Base.Name != "python:3.11-slim" {
		t.Errorf("base %+v", p.Base)
	}
	if !slices.Contains(p.Config.Env, "PORT=5000") || !slices.Equal(p.Config.ExposedPorts, []string{"5000/tcp"}) {
		t.Errorf("port: env %v exposed %v", p.Config.Env, p.Config.ExposedPorts)
	}
	if p.Config.User == "" || strings.HasPrefix(p.Config.User, "0") || p.Config.User == "root" {
		t.Errorf("user %q is root", p.Config.User)
	}
	if p.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels %v", p.Config.Labels)
	}
	sources := map[string]string{}
	for _, d := range p.Decisions {
		sources[d.What] = d.Source
	}
	if sources["python"] != ".python-version:1" || sources["start"] != "app.py:8" || sources["port"] != "app.py:9" {
		t.Errorf("decision sources %v", sources)
	}
	// The plan is plain data: it survives a JSON round trip unchanged.
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Errorf("JSON round trip changed the plan:\n%s\n%s", data, again)
	}

	// Labels: the flags' over the configuration's and the revision; the base's name is
	// pyship's.
	res.Config = &detect.Config{Labels: map[string]string{"team": "config", "tier": "web"}}
	p, err = New(res, Options{Revision: "abc", Labels: map[string]string{"team": "flag", "org.opencontainers.image.revision": "v9"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"team": "flag", "tier": "web", "org.opencontainers.image.revision": "v9", "org.opencontainers.image.base.name": "python:3.11-slim"}
	if !maps.Equal(p.Config.Labels, want) {
		t.Errorf("labels %v, want %v", p.Config.Labels, want)
	}
	res.Config = nil

	p, err = New(res, Options{Base: "ghcr.io/me/python:custom", BaseMirror: "127.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Base.Ref != "ghcr.io/me/python:custom" {
		t.Errorf("--base: ref %q", p.Base.Ref)
	}
}

// TestWritable checks who may write where: the plan is what the layers give owners by, so
// an app user that could not write /app or HOME, or could own its code, starts here.
func TestWritable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		user     string
		wantUser string
		want     []Writable
	}{
		{"default user", "", "65532:65532", []Writable{
			{Path: "/app", Subdirs: true, SQLite: true, UID: 0, GID: 65532, Mode: "1775"},
			{Path: "/home/app", UID: 65532, GID: 65532, Mode: "0755"},
		}},
		{"configured user and group", "10001:20002", "10001:20002", []Writable{
			{Path: "/app", Subdirs: true, SQLite: true, UID: 0, GID: 20002, Mode: "1775"},
			{Path: "/home/app", UID: 10001, GID: 20002, Mode: "0755"},
		}},
		// Without a group the plan names one, so that podman (group 0 for a uid missing
		// from /etc/passwd) and pyship's sandbox run the app with the same group.
		{"configured user alone", "10001", "10001:10001", []Writable{
			{Path: "/app", Subdirs: true, SQLite: true, UID: 0, GID: 10001, Mode: "1775"},
			{Path: "/home/app", UID: 10001, GID: 10001, Mode: "0755"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &detect.Result{
				Python: detect.Fact{Value: "3.12", Source: "default"},
				Start:  detect.Start{Command: []string{"python", "app.py"}, Source: "app.py:1"},
				Port:   detect.Port{Number: 8080, Source: "default"},
				Config: &detect.Config{File: "pyship.toml", User: tc.user},
			}
			p, err := New(res, Options{Platform: "linux/amd64"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Config.User != tc.wantUser {
				t.Errorf("user %q, want %q", p.Config.User, tc.wantUser)
			}
			if !slices.Equal(p.Writable, tc.want) {
				t.Errorf("writable %+v, want %+v", p.Writable, tc.want)
			}
			if !slices.Contains(p.Config.Env, "HOME="+HomeDir) {
				t.Errorf("env %v does not set HOME to the writable home", p.Config.Env)
			}
		})
	}
	bad := &detect.Result{
		Python: detect.Fact{Value: "3.12"}, Start: detect.Start{Command: []string{"python", "app.py"}},
		Port: detect.Port{Number: 8080}, Config: &detect.Config{User: "app"},
	}
	if _, err := New(bad, Options{}); err == nil {
		t.Errorf("a user name was planned; the writable directories need numeric ids")
	}
}

// TestInstallSteps pins the commands the dependency install runs: the build runs these
// argv and no others, so a change to how dependencies are installed shows here and in the
// golden plans.
func TestInstallSteps(t *testing.T) {
	const (
		py      = "/opt/venv/bin/python"
		compile = "/opt/venv/bin/python -c " + compileScript + " /opt/venv/lib"
		venv    = "python3 -m venv --without-pip /opt/venv"
		uv      = "/run/pyship/uv pip install --python " + py
		tool    = "python3 -m venv /var/lib/pyship/pip"
		toolPip = "/var/lib/pyship/pip/bin/python -m pip"
		pip     = toolPip + " --python " + py + " install --no-cache-dir --no-compile"
		uvLine  = "pyship: python -m venv --without-pip /opt/venv && uv " + UVVersion + " pip install"
		uvST    = "setuptools: " + uv + " setuptools<82"
		pipST   = "setuptools: " + pip + " setuptools<82"
	)
	lock := &detect.Lock{File: "uv.lock", Format: "uv", Local: []string{"."}, Packages: []detect.LockedPackage{
		{Name: "flask", Version: "3.1.0", Hashes: []string{"sha256:00"}},
		{Name: "tzdata", Version: "1", URL: "https://example.com/tzdata-1.whl", Marker: `sys_platform == "win32"`, Hashes: []string{"sha256:01", "sha256:02"}},
	}}
	for _, tc := range []struct {
		name      string
		deps      detect.Dependencies
		installer string
		python    string
		committed time.Time
		want      []string
		history   string
	}{
		{
			name: "requirements", deps: detect.Dependencies{Requirements: []string{"requirements.txt", "dev/extra.txt"}},
			want:    []string{"venv: " + venv, "uv: " + uv + " -r requirements.txt -r dev/extra.txt", uvST, "compile: " + compile},
			history: uvLine + " -r requirements.txt && uv " + UVVersion + " pip install -r dev/extra.txt",
		},
		{
			name: "requirements with pip", deps: detect.Dependencies{Requirements: []string{"requirements.txt", "dev/extra.txt"}}, installer: "pip",
			want:    []string{"venv: " + venv, "venv: " + tool, "pip: " + pip + " -r requirements.txt -r dev/extra.txt", pipST, "compile: " + compile},
			history: "pyship: python -m venv --without-pip /opt/venv && pip install -r requirements.txt && pip install -r dev/extra.txt",
		},
		{
			name: "requirements as of the commit", deps: detect.Dependencies{Requirements: []string{"requirements.txt"}},
			python: "3.12", committed: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
			want:    []string{"venv: " + venv, "uv: " + uv + " --exclude-newer 2025-03-04T05:06:07Z -r requirements.txt", "setuptools: " + uv + " --exclude-newer 2025-03-04T05:06:07Z setuptools<82", "compile: " + compile},
			history: uvLine + " -r requirements.txt (as uploaded before 2025-03-04T05:06:07Z)",
		},
		{
			name: "requirements as of the commit with pip", deps: detect.Dependencies{Requirements: []string{"requirements.txt"}}, installer: "pip",
			python: "3.12", committed: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
			want: []string{"venv: " + venv, "venv: " + tool, "pip: " + toolPip + " install --no-cache-dir --upgrade pip==26.3",
				"pip: " + pip + " --uploaded-prior-to=2025-03-04T05:06:07Z -r requirements.txt",
				"setuptools: " + pip + " --uploaded-prior-to=2025-03-04T05:06:07Z setuptools<82", "compile: " + compile},
			history: "pyship: python -m venv --without-pip /opt/venv && pip install -r requirements.txt (as uploaded before 2025-03-04T05:06:07Z)",
		},
		{
			name: "project on Python 3.9 as of a commit before its wheels", deps: detect.Dependencies{Project: true}, installer: "pip",
			python: "3.9", committed: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
			want: []string{"venv: " + venv, "venv: " + tool, "pip: " + toolPip + " install --no-cache-dir --upgrade pip==26.0.1",
				"pip: " + pip + " --uploaded-prior-to=2021-04-05T00:00:00Z .",
				"setuptools: " + pip + " --uploaded-prior-to=2021-04-05T00:00:00Z setuptools<82", "compile: " + compile},
			history: "pyship: python -m venv --without-pip /opt/venv (as uploaded before 2021-04-05T00:00:00Z) && pip install .",
		},
		{
			name: "lock with the project", deps: detect.Dependencies{Project: true, Lock: lock},
			committed: time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC),
			want: []string{"venv: " + venv, "uv: " + uv + " --require-hashes --no-deps -r " + LockRequirements,
				"uv: " + uv + " --no-deps ./.", uvST, "compile: " + compile},
			history: uvLine + " --require-hashes --no-deps (uv.lock)",
		},
		{
			name: "inferred packages", deps: detect.Dependencies{Inferred: []detect.Inferred{{Name: "flask", Import: "flask", Source: "app.py:1"}}},
			want:    []string{"venv: " + venv, "uv: " + uv + " flask", uvST, "compile: " + compile},
			history: uvLine + " flask",
		},
		{
			name: "nothing to install", deps: detect.Dependencies{},
			want:    []string{"venv: " + venv, "compile: " + compile},
			history: "pyship: python -m venv --without-pip /opt/venv",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			python := tc.python
			if python == "" {
				python = "3.12"
			}
			res := &detect.Result{
				Python:       detect.Fact{Value: python, Source: "default"},
				Dependencies: tc.deps,
				Start:        detect.Start{Command: []string{"python", "app.py"}, Source: "app.py:1"},
				Port:         detect.Port{Number: 8080, Source: "default"},
			}
			if tc.deps.Lock != nil {
				// Project is what the lock's Local says for a locked install.
				res.Dependencies.Project = false
			}
			p, err := New(res, Options{Platform: "linux/amd64", HostArch: "amd64", Committed: tc.committed, Installer: tc.installer})
			if err != nil {
				t.Fatal(err)
			}
			if want := cmp.Or(tc.installer, InstallerUV); p.Dependencies.Installer != want {
				t.Errorf("installer %q, want %q", p.Dependencies.Installer, want)
			}
			var got []string
			for _, st := range p.Dependencies.Steps {
				got = append(got, st.Kind+": "+strings.Join(st.Args, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if p.History.Dependencies != tc.history {
				t.Errorf("history %q, want %q", p.History.Dependencies, tc.history)
			}
			if tc.deps.Lock != nil && (p.Dependencies.LockRequirements != LockRequirements || p.Dependencies.Lock == nil ||
				p.Dependencies.Lock.Requirements() != "# Translated by pyship from uv.lock (uv); every package pinned and hashed.\n"+
					"flask==3.1.0 \\\n    --hash=sha256:00\n"+
					"tzdata @ https://example.com/tzdata-1.whl ; sys_platform == \"win32\" \\\n    --hash=sha256:01 \\\n    --hash=sha256:02\n") {
				t.Errorf("lock %+v at %q", p.Dependencies.Lock, p.Dependencies.LockRequirements)
			}
		})
	}
}

// TestForeignPlatform: an image for another architecture than the build machine's takes
// wheels for the target, by uv, with no pip fallback; pip, and a
// platform pyship has no wheels for, are refused naming what to change; the machine's own
// architecture changes nothing.
func TestForeignPlatform(t *testing.T) {
	res := &detect.Result{
		Python:       detect.Fact{Value: "3.13", Source: "default"},
		Dependencies: detect.Dependencies{Requirements: []string{"requirements.txt"}},
		Start:        detect.Start{Command: []string{"python", "app.py"}, Source: "app.py:1"},
		Port:         detect.Port{Number: 8080, Source: "default"},
	}
	for _, tc := range []struct {
		platform, host, installer string
		wheels, err               string
	}{
		{platform: "linux/arm64", host: "amd64", wheels: "aarch64-manylinux_2_28"},
		{platform: "linux/amd64", host: "arm64", wheels: "x86_64-manylinux_2_28"},
		{platform: "linux/arm64/v8", host: "amd64", wheels: "aarch64-manylinux_2_28"},
		{platform: "linux/arm64", host: "arm64"},
		{platform: "linux/arm64", host: "amd64", installer: "pip", err: `installer "pip" cannot install for linux/arm64 on this amd64 machine`},
		{platform: "linux/s390x", host: "amd64", err: "pyship builds for linux/amd64 and linux/arm64"},
	} {
		t.Run(tc.platform+" on "+tc.host+" "+tc.installer, func(t *testing.T) {
			p, err := New(res, Options{Platform: tc.platform, HostArch: tc.host, Installer: tc.installer})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := p.Dependencies
			if d.Wheels != tc.wheels {
				t.Errorf("wheels %q, want %q", d.Wheels, tc.wheels)
			}
			install := strings.Join(d.Steps[1].Args, " ")
			foreign := strings.Contains(install, "--python-platform "+tc.wheels+" -r requirements.txt")
			if foreign != (tc.wheels != "") || (tc.wheels == "" && strings.Contains(install, "--python-platform")) {
				t.Errorf("install step %q for wheels %q", install, tc.wheels)
			}
			if (len(d.PipSteps) > 0) == (tc.wheels != "") {
				t.Errorf("%d pip steps for wheels %q: pip cannot stand in for a foreign install, and does for a native one", len(d.PipSteps), tc.wheels)
			}
		})
	}
}

// TestSmokeTimeout: the plan's timeout is a duration, written as JSON like "30s", and one
// that is not positive is the configuration's fault, named by its line.
func TestSmokeTimeout(t *testing.T) {
	res := func(timeout time.Duration) *detect.Result {
		return &detect.Result{
			Python: detect.Fact{Value: "3.12"}, Start: detect.Start{Command: []string{"python", "app.py"}},
			Port:   detect.Port{Number: 8080},
			Config: &detect.Config{File: "pyship.toml", Smoke: detect.Smoke{Timeout: detect.Duration{Duration: timeout}}},
		}
	}
	p, err := New(res(0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(p.Smoke.Timeout) != DefaultSmokeTimeout {
		t.Errorf("default timeout %v", time.Duration(p.Smoke.Timeout))
	}
	if p, err = New(res(90*time.Second), Options{}); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(p.Smoke)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"timeout":"1m30s"`) {
		t.Errorf("smoke as JSON: %s", data)
	}
	var back Smoke
	if err := json.Unmarshal(data, &back); err != nil || back.Timeout != p.Smoke.Timeout {
		t.Errorf("read back %v (%v), want %v", back.Timeout, err, p.Smoke.Timeout)
	}
	for _, bad := range []string{`{"timeout":"soon"}`, `{"timeout":"-1s"}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s read as a smoke timeout", bad)
		}
	}
	_, err = New(res(-time.Second), Options{})
	var de *detect.Error
	if !errors.As(err, &de) || de.File != "pyship.toml" {
		t.Errorf("a negative timeout planned: %v", err)
	}
}

// TestInstallStepLine: a script given to python -c shows as its first line on one line.
func TestInstallStepLine(t *testing.T) {
	st := InstallStep{Kind: StepCompile, Args: []string{"/opt/venv/bin/python", "-c", "import sys\nsys.exit(0)\n", "/opt/venv/lib"}}
	if got, want := st.Line(), "/opt/venv/bin/python -c 'import sys …' /opt/venv/lib"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}
