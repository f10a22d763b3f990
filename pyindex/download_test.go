package pyindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDownload: the file is found through the project's page, its link resolved against
// the page, and its bytes are checked against the hash asked for.
func TestDownload(t *testing.T) {
	wheel := []byte("the bytes of a wheel")
	sum := sha256.Sum256(wheel)
	good := hex.EncodeToString(sum[:])
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/tool/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<html><body><a href="../../files/tool-1.0-py3-none-any.whl#sha256=` + good + `">tool-1.0-py3-none-any.whl</a></body></html>`))
	})
	mux.HandleFunc("/files/tool-1.0-py3-none-any.whl", func(w http.ResponseWriter, r *http.Request) { w.Write(wheel) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &Client{Indexes: []string{srv.URL + "/simple/"}, HTTP: srv.Client()}
	ctx := context.Background()

	var got bytes.Buffer
	if err := c.Download(ctx, "Tool", "tool-1.0-py3-none-any.whl", good, 1<<20, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), wheel) {
		t.Errorf("downloaded %q", got.Bytes())
	}
	var he *HashError
	if err := c.Download(ctx, "tool", "tool-1.0-py3-none-any.whl", "00"+good[2:], 1<<20, &bytes.Buffer{}); !errors.As(err, &he) {
		t.Errorf("a file with other bytes than asked for: %v", err)
	}
	if err := c.Download(ctx, "tool", "tool-1.0-py3-none-any.whl", good, 4, &bytes.Buffer{}); err == nil {
		t.Errorf("a file over the limit was downloaded")
	}
	if err := c.Download(ctx, "tool", "tool-2.0-py3-none-any.whl", good, 1<<20, &bytes.Buffer{}); !IsNotFound(err) {
		t.Errorf("a file the page does not list: %v", err)
	}
}
