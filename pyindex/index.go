package pyindex

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/detect"
)

// DefaultIndex is PyPI's simple API, pip's default index.
const DefaultIndex = "https://pypi.org/simple/"

// CacheTTL is how long an index answer is reused. A release's files rarely change after
// upload, but wheels for a new Python are sometimes added later.
const CacheTTL = 24 * time.Hour

// maxPage caps an index page: the largest projects on PyPI list some tens of thousands of
// files (a few MiB of JSON).
const maxPage = 32 << 20

// File is one distribution file of a project, as an index lists it.
type File struct {
	Name           string `json:"filename"`
	RequiresPython string `json:"requires_python,omitempty"`
	Yanked         bool   `json:"yanked,omitempty"`
	// URL is where the file is, absolute; answers kept in the cache do not have it.
	URL string `json:"-"`
}

// Client reads project pages from package indexes through the simple API: PEP 691 JSON
// where the index serves it, PEP 503 HTML otherwise.
type Client struct {
	// Indexes are the index URLs to ask, in order: the first that knows a project answers.
	Indexes []string
	// HTTP makes the requests; NewClient sets one that trusts the host's and pip's CAs.
	HTTP *http.Client
	// CacheDir keeps answers for CacheTTL; empty disables the cache.
	CacheDir string
	Logger   hclog.Logger
	// now is time.Now, replaceable in tests.
	now func() time.Time
}

// NewClient returns a client for the package indexes pip on this machine uses (PIP_INDEX_URL,
// PIP_EXTRA_INDEX_URL, pip.conf, else PyPI), trusting the CA bundle pip would use (PIP_CERT,
// the host's store), with credentials from the index URLs and the proxy from the environment.
func NewClient(cacheDir string, log hclog.Logger) *Client {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pool := caPool(); pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{
		Indexes:  HostIndexes(),
		HTTP:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
		CacheDir: cacheDir,
		Logger:   log,
	}
}

// caPool adds the CA bundle pip would use (PIP_CERT, say) to the system's, for an index
// behind a company's CA.
func caPool() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(HostCABundle())
	if err != nil || !pool.AppendCertsFromPEM(data) {
		return nil
	}
	return pool
}

// Files lists the files of project name (any spelling) from the first index that knows it.
func (c *Client) Files(ctx context.Context, name string) ([]File, error) {
	name = normalize(name)
	indexes := c.Indexes
	if len(indexes) == 0 {
		indexes = []string{DefaultIndex}
	}
	var errs []error
	for _, index := range indexes {
		files, err := c.cachedFiles(ctx, index, name)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return files, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("%w: %s is on no package index (%s)", errNotFound, name, strings.Join(redactAll(indexes), ", "))
}

func (c *Client) log() hclog.Logger {
	if c.Logger == nil {
		return hclog.NewNullLogger()
	}
	return c.Logger
}

var errNotFound = errors.New("not found")

// IsNotFound reports whether err says a project is on no index.
func IsNotFound(err error) bool { return errors.Is(err, errNotFound) }

type cacheEntry struct {
	Fetched time.Time `json:"fetched"`
	Files   []File    `json:"files"`
}

func (c *Client) cachedFiles(ctx context.Context, index, name string) ([]File, error) {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	var path string
	if c.CacheDir != "" {
		sum := sha256.Sum256([]byte(redact(index) + "\x00" + name))
		path = filepath.Join(c.CacheDir, hex.EncodeToString(sum[:16])+".json")
		if data, err := os.ReadFile(path); err == nil {
			var e cacheEntry
			if json.Unmarshal(data, &e) == nil && now().Sub(e.Fetched) < CacheTTL && now().Sub(e.Fetched) >= 0 {
				return e.Files, nil
			}
		}
	}
	files, err := c.fetch(ctx, index, name)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := writeCache(path, cacheEntry{Fetched: now().UTC(), Files: files}); err != nil {
			c.log().Debug("cannot cache an index answer", "error", err)
		}
	}
	return files, nil
}

func writeCache(path string, e cacheEntry) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

const (
	jsonType = "application/vnd.pypi.simple.v1+json"
	htmlType = "application/vnd.pypi.simple.v1+html"
)

func (c *Client) fetch(ctx context.Context, index, name string) ([]File, error) {
	u, err := url.Parse(strings.TrimSuffix(index, "/") + "/" + name + "/")
	if err != nil {
		// The parser's error quotes the URL, credentials and all.
		return nil, fmt.Errorf("index URL %q cannot be read as a URL", redact(index))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
	}
	req.Header.Set("Accept", jsonType+", "+htmlType+";q=0.2, text/html;q=0.1")
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Its message quotes the URL; the credentials are in the request's header.
			err = ue.Err
		}
		return nil, fmt.Errorf("asking %s about %s: %w", redact(index), name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("asking %s about %s: %s", redact(index), name, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s's page for %s: %w", redact(index), name, err)
	}
	if len(body) > maxPage {
		return nil, fmt.Errorf("%s's page for %s is larger than %d MiB", redact(index), name, maxPage>>20)
	}
	c.log().Debug("asked the package index", "project", name, "index", redact(index), "took", time.Since(start).Round(time.Millisecond))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), jsonType) {
		return parseJSON(body, resp.Request.URL)
	}
	return parseHTML(body, resp.Request.URL), nil
}

// fileURL resolves a file's link on the page at base.
func fileURL(base *url.URL, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	u.Fragment = ""
	return u.String()
}

// parseJSON reads a PEP 691 project page found at base.
func parseJSON(body []byte, base *url.URL) ([]File, error) {
	var page struct {
		Files []struct {
			Filename       string          `json:"filename"`
			URL            string          `json:"url"`
			RequiresPython *string         `json:"requires-python"`
			Yanked         json.RawMessage `json:"yanked"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("reading a PEP 691 project page: %w", err)
	}
	files := make([]File, 0, len(page.Files))
	for _, f := range page.Files {
		file := File{Name: f.Filename, URL: fileURL(base, f.URL)}
		if f.RequiresPython != nil {
			file.RequiresPython = *f.RequiresPython
		}
		// yanked is false or true or a reason string.
		y := strings.TrimSpace(string(f.Yanked))
		file.Yanked = y != "" && y != "false" && y != "null"
		files = append(files, file)
	}
	return files, nil
}

var (
	anchorRe = regexp.MustCompile(`(?is)<a\s((?:[^>"']|"[^"]*"|'[^']*')*)>`)
	attrRe   = regexp.MustCompile(`(?is)([a-z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?`)
)

// parseHTML reads a PEP 503 project page: one anchor per file, the file name the last
// segment of its href (as pip takes it), data-requires-python and data-yanked as
// attributes. Attribute values may hold an unescaped ">". Links resolve against base.
func parseHTML(body []byte, base *url.URL) []File {
	var files []File
	for _, m := range anchorRe.FindAllSubmatch(body, -1) {
		var f File
		for _, a := range attrRe.FindAllSubmatch(m[1], -1) {
			v := html.UnescapeString(string(a[2]) + string(a[3]) + string(a[4]))
			switch strings.ToLower(string(a[1])) {
			case "href":
				u, err := url.Parse(v)
				if err != nil {
					continue
				}
				name, err := url.PathUnescape(path.Base(u.Path))
				if err == nil && name != "." && name != "/" {
					f.Name, f.URL = name, fileURL(base, v)
				}
			case "data-requires-python":
				f.RequiresPython = v
			case "data-yanked":
				f.Yanked = true
			}
		}
		if f.Name != "" {
			files = append(files, f)
		}
	}
	return files
}

// normalize is PEP 503's name normalisation.
func normalize(name string) string { return detect.NormalizeName(name) }

// redact drops the credentials from an index URL, for messages and cache keys.
func redact(index string) string { return detect.WithoutCredentials(index) }

func redactAll(indexes []string) []string {
	out := make([]string, len(indexes))
	for i, s := range indexes {
		out[i] = redact(s)
	}
	return out
}
