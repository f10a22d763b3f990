package pyindex

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HashError reports a downloaded file whose bytes are not the ones asked for.
type HashError struct {
	File, URL, Want, Got string
}

func (e *HashError) Error() string {
	return fmt.Sprintf("%s from %s has sha256 %s, not %s: the index serves other bytes under its name", e.File, e.URL, e.Got, e.Want)
}

// Download writes the file named file of project to w, from the first index that lists
// it, and checks that its bytes have the sha256 (hex) given; at most limit bytes are read.
// The page is asked for afresh: cached answers do not keep links.
func (c *Client) Download(ctx context.Context, project, file, sha256Hex string, limit int64, w io.Writer) error {
	name := normalize(project)
	indexes := c.Indexes
	if len(indexes) == 0 {
		indexes = []string{DefaultIndex}
	}
	var errs []error
	for _, index := range indexes {
		files, err := c.fetch(ctx, index, name)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if f.Name == file && f.URL != "" {
				return c.get(ctx, index, f, sha256Hex, limit, w)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return fmt.Errorf("%w: no package index lists %s (%s)", errNotFound, file, strings.Join(redactAll(indexes), ", "))
}

// get fetches f, with the index's credentials when it is on the index's host.
func (c *Client) get(ctx context.Context, index string, f File, sha256Hex string, limit int64, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return err
	}
	if iu, err := url.Parse(index); err == nil && iu.User != nil && iu.Host == req.URL.Host {
		pass, _ := iu.User.Password()
		req.SetBasicAuth(iu.User.Username(), pass)
	}
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	shown := redact(f.URL)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("downloading %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", shown, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, w), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("downloading %s: %w", shown, err)
	}
	if n > limit {
		return fmt.Errorf("downloading %s: larger than %d MiB", shown, limit>>20)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256Hex {
		return &HashError{File: f.Name, URL: shown, Want: sha256Hex, Got: got}
	}
	return nil
}
