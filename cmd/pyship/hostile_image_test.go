//go:build linux && e2e

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// Hostile images and registries, made by the test: nothing hostile is committed.

// hostileEntry is one entry of a hand-written layer.
type hostileEntry struct {
	name     string
	typ      byte
	mode     int64
	linkname string
	content  string
	major    int64
	minor    int64
}

// hostileLayer writes entries into an uncompressed tar layer, as given: no normalising.
func hostileLayer(t *testing.T, mt types.MediaType, entries ...hostileEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname,
			Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(315532800, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.content))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.content); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// bareLayer hides the tarball layer's own descriptor (an empty, not absent, annotations
// map), which would make the manifest differ from its own serialisation.
type bareLayer struct{ v1.Layer }

// withLayer puts a hand-written layer on img and checks the result is a valid image.
func withLayer(t *testing.T, img v1.Image, entries ...hostileEntry) v1.Image {
	t.Helper()
	mt := types.DockerLayer
	if m, err := img.MediaType(); err == nil && m == types.OCIManifestSchema1 {
		mt = types.OCILayer
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: bareLayer{hostileLayer(t, mt, entries...)}, MediaType: mt})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(out); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	return out
}

// inLayout adds img to the suite's OCI layout (which already holds the plain app image, so
// only the new blobs are written) and returns the reference pyship test --image takes.
func (s *hostileSuite) inLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	p, err := layout.FromPath(s.appLayout)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return s.appLayout + "@" + d.String()
}

// push writes img to the test-bed registry and returns the reference.
func push(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// tagExists reports whether ref is in its registry.
func tagExists(ref string) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	_, err = remote.Head(r, remote.WithTransport(&http.Transport{ResponseHeaderTimeout: 10 * time.Second}))
	return err == nil
}

// imageEntries reads every layer (but those skip names) of the image in an OCI layout (the one whose digest
// stdout printed, else its only image) and calls fn with each entry and its content.
func imageEntries(dir, stdout string, skip func(v1.Hash) bool, fn func(layer int, h *tar.Header, data []byte)) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	var img v1.Image
	if _, d, ok := strings.Cut(strings.TrimSpace(stdout), "sha256:"); ok {
		h, err := v1.NewHash("sha256:" + strings.TrimSpace(d))
		if err != nil {
			return err
		}
		img, err = p.Image(h)
		if err != nil {
			return err
		}
	} else {
		idx, err := p.ImageIndex()
		if err != nil {
			return err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		images := layoutImages(m)
		if len(images) != 1 {
			return fmt.Errorf("the layout holds %d images", len(images))
		}
		if img, err = p.Image(images[0]); err != nil {
			return err
		}
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range ls {
		if d, err := l.Digest(); err == nil && skip(d) {
			continue
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return err
			}
			data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				rc.Close()
				return err
			}
			fn(i, h, data)
		}
		rc.Close()
	}
	return nil
}

// blackholeRegistry accepts connections and never answers: what a registry behind a
// broken proxy or firewall looks like.
func blackholeRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// hugeErrorRegistry answers the API check, then every request with a server error whose
// body is 16 MiB.
func hugeErrorRegistry(t *testing.T) string {
	t.Helper()
	body := bytes.Repeat([]byte("registry error "), (16<<20)/15)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// remoteImage reads an image from a registry.
func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return img
}

// validateLayout checks every image of an OCI layout, reading all its blobs.
func validateLayout(dir string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		img, err := p.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := validate.Image(img); err != nil {
			return fmt.Errorf("%s: %w", d.Digest, err)
		}
	}
	return nil
}
