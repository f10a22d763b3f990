package pyindex

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pyship/pyship/detect"
)

// staticIndex serves dir as a PEP 503 index: a directory of project pages, as pip can use
// any plain web server. It requires user:secret when auth is set, and counts requests.
func staticIndex(t *testing.T, pages map[string]string, auth bool) (string, *atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	for project, page := range pages {
		if err := os.MkdirAll(filepath.Join(dir, project), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, project, "index.html"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var n atomic.Int64
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if u, p, ok := r.BasicAuth(); auth && (!ok || u != "user" || p != "secret") {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", &n
}

const fastlibPage = `<!DOCTYPE html><html><body>
<a href="../files/fastlib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl#sha256=00" data-requires-python="&gt;=3.8">fastlib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl</a>
<a href="../files/fastlib-1.0-cp311-cp311-manylinux_2_17_x86_64.whl#sha256=01" data-requires-python="&gt;=3.8">fastlib-1.0-cp311-cp311-manylinux_2_17_x86_64.whl</a>
<a href="../files/fastlib-1.0.tar.gz#sha256=02" data-requires-python="&gt;=3.8">fastlib-1.0.tar.gz</a>
<a href="../files/fastlib-2.0-cp314-cp314-manylinux_2_17_x86_64.whl#sha256=03" data-yanked="">fastlib-2.0-cp314-cp314-manylinux_2_17_x86_64.whl</a>
</body></html>`

const wheelOnlyPage = `<html><body><a href="../files/wheelonly-1.0-cp312-cp312-manylinux2014_x86_64.whl">wheelonly-1.0-cp312-cp312-manylinux2014_x86_64.whl</a></body></html>`

const purePage = `<html><body><a href="../files/purelib-1.0-py3-none-any.whl">purelib-1.0-py3-none-any.whl</a></body></html>`

func result(pins ...detect.Pin) *detect.Result {
	return &detect.Result{
		Python:        detect.Fact{Value: "3.14", Source: "default"},
		PythonChoices: []string{"3.15", "3.14", "3.13", "3.12", "3.11", "3.10"},
		Dependencies:  detect.Dependencies{Pins: pins},
	}
}

func TestChooseFromAnIndex(t *testing.T) {
	index, requests := staticIndex(t, map[string]string{"fastlib": fastlibPage, "purelib": purePage}, true)
	u := strings.Replace(index, "http://", "http://user:secret@", 1)
	cache := t.TempDir()
	c := &Client{Indexes: []string{u}, HTTP: http.DefaultClient, CacheDir: cache}
	res := result(
		detect.Pin{Name: "PureLib", Version: "1.0", Source: "requirements.txt:1"},
		detect.Pin{Name: "fastlib", Version: "1.0", Source: "requirements.txt:2"},
	)
	got := Choose(context.Background(), c, res)
	if got.Python != "3.12" || got.Source != "requirements.txt:2" || !strings.Contains(got.Reason, "fastlib 1.0 (requirements.txt:2) has no cp314 or cp313 wheel") {
		t.Fatalf("Choose = %+v", got)
	}
	if len(got.Warnings) > 0 {
		t.Errorf("warnings: %q", got.Warnings)
	}
	if strings.Contains(got.Reason, "purelib") {
		t.Errorf("a pure wheel is named as a reason: %q", got.Reason)
	}
	asked := requests.Load()
	if asked != 2 {
		t.Errorf("%d requests for two projects", asked)
	}

	// A second run answers from the cache, and the cache keeps no credentials.
	if again := Choose(context.Background(), c, res); again.Python != "3.12" {
		t.Errorf("from the cache: %+v", again)
	}
	if n := requests.Load(); n != asked {
		t.Errorf("the second run made %d more requests", n-asked)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(cache, e.Name()))
		if strings.Contains(string(data), "secret") {
			t.Errorf("cache file %s holds the index password", e.Name())
		}
	}
}

func TestChooseKeepsThePreferredVersion(t *testing.T) {
	index, _ := staticIndex(t, map[string]string{"purelib": purePage, "fastlib": fastlibPage, "wheelonly": wheelOnlyPage}, false)
	c := &Client{Indexes: []string{index}, HTTP: http.DefaultClient}
	pure := detect.Pin{Name: "purelib", Version: "1.0", Source: "requirements.txt:1"}

	if got := Choose(context.Background(), c, result(pure)); got.Python != "3.14" || got.Reason != "" || len(got.Warnings) > 0 {
		t.Errorf("pure requirements: %+v", got)
	}

	// The repository names a version: no question is asked, nothing moves.
	pinned := result(detect.Pin{Name: "fastlib", Version: "1.0", Source: "requirements.txt:2"})
	pinned.PythonChoices = nil
	if got := Choose(context.Background(), c, pinned); got.Python != "3.14" {
		t.Errorf("a named version moved: %+v", got)
	}

	// A range that allows only versions the wheels miss, where the release has a source
	// distribution: it is built from source, and picks nothing.
	narrow := result(detect.Pin{Name: "fastlib", Version: "1.0", Source: "requirements.txt:2"})
	narrow.PythonChoices = []string{"3.14", "3.13"}
	if got := Choose(context.Background(), c, narrow); got.Python != "3.14" || got.Reason != "" || len(got.Warnings) > 0 ||
		len(got.SourceBuilds) != 1 || got.SourceBuilds[0].Name != "fastlib" {
		t.Errorf("source build: %+v", got)
	}

	// Without one: kept, with a warning naming it.
	narrow = result(detect.Pin{Name: "wheelonly", Version: "1.0", Source: "requirements.txt:3"})
	narrow.PythonChoices = []string{"3.14", "3.13"}
	got := Choose(context.Background(), c, narrow)
	if got.Python != "3.14" || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "wheelonly 1.0 (requirements.txt:3) has no cp314 or cp313 wheel") {
		t.Errorf("no version fits: %+v", got)
	}
}

func TestChooseWhenTheIndexFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := &Client{Indexes: []string{srv.URL + "/simple/"}, HTTP: http.DefaultClient}
	got := Choose(context.Background(), c, result(detect.Pin{Name: "fastlib", Version: "1.0", Source: "requirements.txt:2"}))
	if got.Python != "3.14" || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "503") || !strings.Contains(got.Warnings[0], "Python 3.14 is kept") {
		t.Errorf("index down: %+v", got)
	}

	missing, _ := staticIndex(t, map[string]string{}, false)
	c = &Client{Indexes: []string{missing}, HTTP: http.DefaultClient}
	got = Choose(context.Background(), c, result(detect.Pin{Name: "private-lib", Version: "1.0", Source: "requirements.txt:4"}))
	if got.Python != "3.14" || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "private-lib (requirements.txt:4) is on no package index") {
		t.Errorf("unknown project: %+v", got)
	}
}

func TestParseJSON(t *testing.T) {
	page := `{"meta":{"api-version":"1.1"},"name":"x","files":[
	{"filename":"x-1.0-py3-none-any.whl","url":"u","hashes":{},"requires-python":">=3.9","yanked":false},
	{"filename":"x-0.9.tar.gz","url":"u","hashes":{},"requires-python":null,"yanked":"broken build"}]}`
	files, err := parseJSON([]byte(page), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].RequiresPython != ">=3.9" || files[0].Yanked || !files[1].Yanked || files[1].RequiresPython != "" {
		t.Errorf("parseJSON = %+v", files)
	}
}

func TestPipConf(t *testing.T) {
	c := parsePipConf("[global]\nindex-url = https://u:p@pkgs.example/simple\nextra-index-url =\n    https://a.example/simple\n    https://b.example/simple\n")
	if c.index != "https://u:p@pkgs.example/simple" || strings.Join(c.extra, " ") != "https://a.example/simple https://b.example/simple" {
		t.Errorf("parsePipConf = %+v", c)
	}
}

func TestParseHTML(t *testing.T) {
	page := `<html><body>
<a href="https://files.example/packages/ab/cd/foo-1.0-py3-none-any.whl#sha256=00" data-requires-python=">=3.8">ignored text</a>
<a data-yanked href='../../packages/foo-0.9.tar.gz' >foo-0.9.tar.gz</a>
<a href=foo-0.8.zip data-requires-python="&gt;=3.6,&lt;4">foo-0.8.zip</a>
</body></html>`
	base, _ := url.Parse("https://pkgs.example/simple/foo/")
	files := parseHTML([]byte(page), base)
	want := []File{
		{Name: "foo-1.0-py3-none-any.whl", RequiresPython: ">=3.8", URL: "https://files.example/packages/ab/cd/foo-1.0-py3-none-any.whl"},
		{Name: "foo-0.9.tar.gz", Yanked: true, URL: "https://pkgs.example/packages/foo-0.9.tar.gz"},
		{Name: "foo-0.8.zip", RequiresPython: ">=3.6,<4", URL: "https://pkgs.example/simple/foo/foo-0.8.zip"},
	}
	if len(files) != len(want) {
		t.Fatalf("parseHTML = %+v", files)
	}
	for i := range want {
		if files[i] != want[i] {
			t.Errorf("file %d = %+v, want %+v", i, files[i], want[i])
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@pkgs.example/simple/":   "https://pkgs.example/simple/",
		"https://user:se%zzcret@pkgs.example/simple": "https://pkgs.example/simple",
		"https://pypi.org/simple/":                   "https://pypi.org/simple/",
	} {
		if got := redact(in); got != want || strings.Contains(got, "secret") {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	// An index that cannot be reached: the error names it without the password.
	c := &Client{Indexes: []string{"http://user:secret@127.0.0.1:1/simple/"}, HTTP: http.DefaultClient}
	_, err := c.Files(context.Background(), "flask")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
}
