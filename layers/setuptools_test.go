package layers

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSetuptoolsImporter: setuptools is installed for code that imports it at run time,
// not for tests or build helpers, and not when it is there already.
func TestSetuptoolsImporter(t *testing.T) {
	site := "opt/venv/lib/python3.11/site-packages/"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"gunicorn 20 imports pkg_resources", map[string]string{
			site + "gunicorn/__init__.py": "version_info = (20, 1, 0)\n",
			site + "gunicorn/util.py":     "import os\nimport pkg_resources\n",
		}, "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py"},
		{"a module that imports it", map[string]string{
			site + "plugins/load.py": "from pkg_resources import iter_entry_points\n",
		}, "/opt/venv/lib/python3.11/site-packages/plugins/load.py"},
		{"an import inside a function or a try", map[string]string{
			site + "werkzeug/testapp.py": "def eggs():\n    try:\n        import pkg_resources\n    except ImportError:\n        pass\n",
		}, ""},
		{"only tests and build helpers import it", map[string]string{
			site + "lib/tests/test_build.py": "import setuptools\n",
			site + "lib/setup.py":            "from setuptools import setup\n",
			site + "lib/core.py":             "# import pkg_resources is not needed\nimport pkg_resources_extra\n",
		}, ""},
		{"setuptools is installed", map[string]string{
			site + "gunicorn/util.py":          "import pkg_resources\n",
			site + "setuptools/__init__.py":    "",
			site + "pkg_resources/__init__.py": "",
		}, ""},
		{"a setuptools without pkg_resources is installed", map[string]string{
			site + "gunicorn/util.py":       "import pkg_resources\n",
			site + "setuptools/__init__.py": "",
		}, "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py"},
		{"code imports setuptools, which is there", map[string]string{
			site + "app/version.py":         "from setuptools import find_packages\n",
			site + "setuptools/__init__.py": "",
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upper := t.TempDir()
			writeFiles(t, upper, tc.files)
			got, err := setuptoolsImporter(upper, "/opt/venv")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("setuptoolsImporter = %q, want %q", got, tc.want)
			}
		})
	}
	// A link in the venv is not followed out of it.
	upper := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"evil.py": "import pkg_resources\n"})
	writeFiles(t, upper, map[string]string{site + "ok.py": "x = 1\n"})
	if err := os.Symlink(filepath.Join(outside, "evil.py"), filepath.Join(upper, site, "evil.py")); err != nil {
		t.Fatal(err)
	}
	if got, err := setuptoolsImporter(upper, "/opt/venv"); err != nil || got != "" {
		t.Errorf("a link out of the venv was read: %q, %v", got, err)
	}
	// Nor is a lib directory that is a link out of it.
	upper = t.TempDir()
	writeFiles(t, outside, map[string]string{"python3.11/site-packages/gunicorn/util.py": "import pkg_resources\n"})
	if err := os.MkdirAll(filepath.Join(upper, "opt", "venv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(upper, "opt", "venv", "lib")); err != nil {
		t.Fatal(err)
	}
	if got, _ := setuptoolsImporter(upper, "/opt/venv"); got != "" {
		t.Errorf("a lib link out of the venv was read: %q", got)
	}
}
