package pyindex

import (
	"testing"

	"github.com/pyship/pyship/detect"
)

func TestWheelSupports(t *testing.T) {
	for _, tc := range []struct {
		name, file, python string
		want               bool
	}{
		{"pure", "flask-3.1.0-py3-none-any.whl", "3.14", true},
		{"py2.py3", "six-1.16.0-py2.py3-none-any.whl", "3.10", true},
		{"cp exact", "httptools-0.6.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.12", true},
		{"cp other", "httptools-0.6.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.13", false},
		{"abi3 newer python", "cryptography-42.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", "3.14", true},
		{"abi3 older python", "cryptography-42.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", "3.8", false},
		{"arm only", "orjson-3.10.0-cp313-cp313-manylinux_2_17_aarch64.whl", "3.13", false},
		{"musl only", "orjson-3.10.0-cp313-cp313-musllinux_1_2_x86_64.whl", "3.13", false},
		{"glibc too new", "x-1.0-cp313-cp313-manylinux_2_39_x86_64.whl", "3.13", false},
		{"windows", "pywin32-306-cp312-cp312-win_amd64.whl", "3.12", false},
		{"py3X floor", "x-1.0-py38-none-any.whl", "3.12", true},
		{"build tag", "x-1.0-1-cp311-cp311-linux_x86_64.whl", "3.11", true},
		{"old m abi", "x-1.0-cp37-cp37m-manylinux1_x86_64.whl", "3.7", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ok := parseWheel(tc.file)
			if !ok {
				t.Fatalf("parseWheel(%q) failed", tc.file)
			}
			if got := w.supports(tc.python); got != tc.want {
				t.Errorf("%s on %s: %v, want %v", tc.file, tc.python, got, tc.want)
			}
		})
	}
}

func TestFileVersion(t *testing.T) {
	for _, tc := range []struct{ file, name, want string }{
		{"Flask-3.1.0-py3-none-any.whl", "flask", "3.1.0"},
		{"python-dateutil-2.9.0.post0.tar.gz", "python-dateutil", "2.9.0.post0"},
		{"python_dateutil-2.9.0.tar.gz", "python-dateutil", "2.9.0"},
		{"zope.interface-6.0.zip", "zope-interface", "6.0"},
		{"other-1.0.tar.gz", "flask", ""},
	} {
		got, _ := fileVersion(tc.file, tc.name)
		if got != tc.want {
			t.Errorf("fileVersion(%q, %q) = %q, want %q", tc.file, tc.name, got, tc.want)
		}
	}
}

func TestJudge(t *testing.T) {
	native := []File{
		{Name: "uvloop-0.19.0-cp312-cp312-manylinux_2_17_x86_64.whl", RequiresPython: ">=3.8.0"},
		{Name: "uvloop-0.19.0-cp311-cp311-manylinux_2_17_x86_64.whl", RequiresPython: ">=3.8.0"},
		{Name: "uvloop-0.19.0.tar.gz", RequiresPython: ">=3.8.0"},
		{Name: "uvloop-0.21.0-cp313-cp313-manylinux_2_17_x86_64.whl"},
	}
	pureSdist := []File{{Name: "itsdangerous-0.24.tar.gz"}}
	limited := []File{{Name: "oldpkg-1.0-py3-none-any.whl", RequiresPython: ">=3.6,<3.12"}}
	gunicorn := []File{{Name: "gunicorn-20.1.0-py3-none-any.whl", RequiresPython: ">=3.5"}}
	for _, tc := range []struct {
		name   string
		pin    detect.Pin
		files  []File
		python string
		ok     bool
		reason string
	}{
		{"wheel for the version", detect.Pin{Name: "uvloop", Version: "0.19.0"}, native, "3.12", true, ""},
		{"no wheel for the version", detect.Pin{Name: "uvloop", Version: "0.19.0"}, native, "3.13", false, "has no cp313 wheel"},
		{"a later release does not count", detect.Pin{Name: "uvloop", Version: "0.19"}, native, "3.13", false, "has no cp313 wheel"},
		{"pure sdist builds anywhere", detect.Pin{Name: "itsdangerous", Version: "0.24"}, pureSdist, "3.14", true, ""},
		{"requires-python excludes", detect.Pin{Name: "oldpkg", Version: "1.0"}, limited, "3.12", false, "requires Python >=3.6,<3.12"},
		{"requires-python allows", detect.Pin{Name: "oldpkg", Version: "1.0"}, limited, "3.11", true, ""},
		{"marker leaves it out", detect.Pin{Name: "uvloop", Version: "0.19.0", Marker: `sys_platform == "win32"`}, native, "3.13", true, ""},
		{"marker keeps it", detect.Pin{Name: "uvloop", Version: "0.19.0", Marker: `python_version >= "3.8"`}, native, "3.13", false, "has no cp313 wheel"},
		{"runtime limit", detect.Pin{Name: "gunicorn", Version: "20.1.0"}, gunicorn, "3.12", false, "pkg_resources"},
		{"werkzeug 0.14 on 3.10", detect.Pin{Name: "Werkzeug", Version: "0.14.1"}, []File{{Name: "Werkzeug-0.14.1-py2.py3-none-any.whl"}}, "3.10", false, "collections.Container"},
		{"werkzeug 0.15.4 on 3.9", detect.Pin{Name: "werkzeug", Version: "0.15.4"}, []File{{Name: "Werkzeug-0.15.4-py2.py3-none-any.whl"}}, "3.9", false, "type_ignores"},
		{"werkzeug 0.14 on 3.9", detect.Pin{Name: "werkzeug", Version: "0.14.1"}, []File{{Name: "Werkzeug-0.14.1-py2.py3-none-any.whl"}}, "3.9", true, ""},
		{"werkzeug 0.15.5 on 3.10", detect.Pin{Name: "werkzeug", Version: "0.15.5"}, []File{{Name: "Werkzeug-0.15.5-py2.py3-none-any.whl"}}, "3.10", true, ""},
		{"markupsafe 1.0 on 3.10", detect.Pin{Name: "MarkupSafe", Version: "1.0"}, []File{{Name: "MarkupSafe-1.0.tar.gz"}}, "3.10", false, "collections.Mapping"},
		{"jinja2 2.10.1 on 3.9", detect.Pin{Name: "jinja2", Version: "2.10.1"}, []File{{Name: "Jinja2-2.10.1-py2.py3-none-any.whl"}}, "3.9", true, ""},
		{"falcon 1 on 3.10", detect.Pin{Name: "falcon", Version: "1.0.0"}, []File{{Name: "falcon-1.0.0-py2.py3-none-any.whl"}}, "3.10", false, "collections.MutableMapping"},
		{"runtime limit not reached", detect.Pin{Name: "gunicorn", Version: "20.1.0"}, gunicorn, "3.11", true, ""},
		{"unknown version is pip's to report", detect.Pin{Name: "uvloop", Version: "9.9"}, native, "3.13", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.pin, tc.files, tc.python)
			if v.ok != tc.ok || !contains(v.reason, tc.reason) {
				t.Errorf("judge = %+v, want ok %v reason %q", v, tc.ok, tc.reason)
			}
		})
	}
}

func contains(s, sub string) bool {
	if sub == "" {
		return s == ""
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestMarkerApplies(t *testing.T) {
	for _, tc := range []struct {
		marker, python string
		applies, ok    bool
	}{
		{`python_version < "3.8"`, "3.12", false, true},
		{`python_version >= "3.10"`, "3.12", true, true},
		{`python_version >= "3.10"`, "3.9", false, true},
		{`sys_platform == "win32"`, "3.12", false, true},
		{`sys_platform != "win32" and python_version < "3.13"`, "3.12", true, true},
		{`platform_system == "Windows" or python_version < "3.11"`, "3.12", false, true},
		{`extra == "dev"`, "3.12", false, false},
		{`extra == "dev" and sys_platform == "win32"`, "3.12", false, true},
		{`python_full_version >= "3.12.1"`, "3.12", false, false},
		{`"linux" in sys_platform`, "3.12", true, true},
	} {
		got, ok := detect.MarkerApplies(tc.marker, tc.python)
		if got != tc.applies || ok != tc.ok {
			t.Errorf("MarkerApplies(%q, %s) = %v, %v; want %v, %v", tc.marker, tc.python, got, ok, tc.applies, tc.ok)
		}
	}
}
