package publish

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func testImage(t *testing.T) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, d := testImage(t)
	r := &Registry{Ref: ref}
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	got, err := r.Publish(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/team/app@" + d.String(); got != want {
		t.Errorf("Publish = %q, want %q", got, want)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d {
		t.Errorf("tag points at %s, want %s", desc.Digest, d)
	}
}

func TestRegistryUnreachable(t *testing.T) {
	ref, err := name.ParseReference("127.0.0.1:1/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	err = (&Registry{Ref: ref}).Check(context.Background())
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("got %v, want a publish error naming the registry, with a hint", err)
	}
}

func TestLayoutReplacesByName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	first, _ := testImage(t)
	second, d2 := testImage(t)
	l := &Layout{Dir: dir, Name: "example.com/app:1"}
	if _, err := l.Publish(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	got, err := l.Publish(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if got != "example.com/app:1@"+d2.String() {
		t.Errorf("Publish = %q", got)
	}
	unnamed, err := (&Layout{Dir: dir}).Publish(context.Background(), second)
	if err != nil || unnamed != d2.String() {
		t.Errorf("unnamed Publish = %q, %v; want %s", unnamed, err, d2)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "example.com/app:1" {
		t.Fatalf("layout index %+v: want only the named image, replaced, and kept by the unnamed publish", m.Manifests)
	}
	img, err := p.Image(d2)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Error(err)
	}
}

func TestTarball(t *testing.T) {
	img, d := testImage(t)
	tag, err := name.NewTag("app:1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.tar")
	got, err := (&Tarball{Path: path, Tag: tag}).Publish(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if got != "index.docker.io/library/app@"+d.String() {
		t.Errorf("Publish = %q", got)
	}
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	if have, _ := loaded.ConfigName(); have != want {
		t.Errorf("loaded config %s, want %s", have, want)
	}
}

func TestKeychain(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghs_token")
	t.Setenv("GITHUB_ACTOR", "octocat")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	kc := Keychain(&Credentials{Registry: "registry.example.com", Username: "me", Password: "pw"})
	for _, tc := range []struct {
		repo, user, password string
	}{
		{"registry.example.com/team/app", "me", "pw"},
		{"ghcr.io/octocat/app", "octocat", "ghs_token"},
		{"other.example.com/app", "", ""},
	} {
		repo, err := name.NewRepository(tc.repo)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := kc.Resolve(repo)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := auth.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user || cfg.Password != tc.password {
			t.Errorf("%s: credentials %q/%q, want %q/%q", tc.repo, cfg.Username, cfg.Password, tc.user, tc.password)
		}
	}
}

func TestRegistryTags(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	r := &Registry{Ref: ref, Tags: []string{"stable", "v1", "stable"}}
	if got := strings.Join(r.TagNames(), ","); got != "v1,stable" {
		t.Errorf("tags %q, want v1,stable", got)
	}
	img, d := testImage(t)
	if _, err := r.Publish(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "stable"} {
		desc, err := remote.Head(ref.Context().Tag(tag))
		if err != nil || desc.Digest != d {
			t.Errorf("%s: %v %v", tag, desc, err)
		}
	}
	want := []string{host + "/team/app:v1", host + "/team/app:stable", host + "/team/app@" + d.String()}
	if got := r.Refs(d.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("refs %v, want %v", got, want)
	}
}

// faultyRegistry is ggcr's registry behind a handler that answers some requests itself.
// fault returns true when it answered.
func faultyRegistry(t *testing.T, fault func(w http.ResponseWriter, r *http.Request) bool) (host string, direct http.Handler) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fault(w, r) {
			reg.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), reg
}

func TestCheckStalls(t *testing.T) {
	silent, accepted := silentRegistry(t)
	ref, err := name.ParseReference(silent + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    []string
	}{
		{name: "no answer within the timeout", timeout: 300 * time.Millisecond, want: []string{silent, "did not answer within 300ms", "hint:"}},
		{name: "interrupted while waiting", timeout: time.Hour, cancel: true, want: []string{"context canceled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() {
					<-accepted
					cancel()
				}()
			}
			start := time.Now()
			err := (&Registry{Ref: ref, Transport: newTestTransport(t, tc.timeout)}).Check(ctx)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a publish error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// TestPublishInterruptedWhileRetrying: ggcr sleeps between retries without watching the
// context; Publish must not wait the sleep out, and must set no tag.
func TestPublishInterruptedWhileRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	host, _ := faultyRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Method != http.MethodPost {
			// Once the answer is in and ggcr has gone to sleep before trying again.
			once.Do(func() { time.AfterFunc(500*time.Millisecond, cancel) })
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := testImage(t)
	r := &Registry{Ref: ref, Backoff: remote.Backoff{Duration: time.Minute, Factor: 1, Steps: 3}}
	start := time.Now()
	_, err = r.Publish(ctx, img)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Publish took %s to notice the interruption", took)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Errorf("an interrupted publish set the tag")
	}
}

// TestErrorQuotesRegistryBodyShortAndEscaped: a registry's error page reaches the user as
// a short excerpt, with its control characters escaped.
func TestErrorQuotesRegistryBodyShortAndEscaped(t *testing.T) {
	page := strings.Repeat("\x1b[31mdenied\x1b[0m by policy\r\n", 1500) // ggcr reads up to 64 KiB of it
	host, _ := faultyRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, page)
			return true
		}
		return false
	})
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	err = (&Registry{Ref: ref}).Check(context.Background())
	if err == nil {
		t.Fatal("Check passed a registry that refuses uploads")
	}
	msg := err.Error()
	if len(msg) > 5000 {
		t.Errorf("error is %d bytes long", len(msg))
	}
	for _, want := range []string{host, "denied", `\x1b`, "more bytes", "hint:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if strings.ContainsAny(msg, "\x1b\r") {
		t.Errorf("error carries raw control characters: %q", msg[:200])
	}
}

// platformIndex makes an index of two random images, one with a referrer.
func platformIndex(t *testing.T) (v1.ImageIndex, []Platform) {
	t.Helper()
	var ps []Platform
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, _ := testImage(t)
		ps = append(ps, Platform{Image: img})
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	desc, err := partial.Descriptor(ps[1].Image)
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := mutate.Subject(mutate.MediaType(empty.Image, types.OCIManifestSchema1), *desc).(v1.Image)
	if !ok {
		t.Fatal("mutate.Subject gave no image")
	}
	ps[1].Referrers = []v1.Image{ref}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), ps
}

// TestRegistryIndex: an index is pushed with its images, each image's referrers, then the
// tags, which point at the index; an image that is not the index's is refused before
// anything is written.
func TestRegistryIndex(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	idx, ps := platformIndex(t)
	r := &Registry{Ref: ref, Tags: []string{"stable"}}
	stranger, _ := testImage(t)
	if _, err := r.PublishIndex(context.Background(), idx, append(ps, Platform{Image: stranger})); err == nil || !strings.Contains(err.Error(), "not in the index") {
		t.Fatalf("an image outside the index: %v", err)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Fatal("the refused push wrote the tag")
	}
	got, err := r.PublishIndex(context.Background(), idx, ps)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if want := host + "/team/app@" + d.String(); got != want {
		t.Errorf("PublishIndex = %q, want %q", got, want)
	}
	for _, tag := range []string{"v1", "stable"} {
		desc, err := remote.Head(ref.Context().Tag(tag))
		if err != nil || desc.Digest != d || desc.MediaType != types.OCIImageIndex {
			t.Errorf("%s: %+v %v, want the index %s", tag, desc, err, d)
		}
	}
	pulled, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatal(err)
	}
	armDigest, _ := ps[1].Image.Digest()
	if pd, _ := pulled.Digest(); pd != armDigest {
		t.Errorf("linux/arm64 resolves to %s, want %s", pd, armDigest)
	}
	refs, err := remote.Referrers(ref.Context().Digest(armDigest.String()))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := refs.IndexManifest(); len(m.Manifests) != 1 {
		t.Errorf("the arm64 image has %d referrers, want 1", len(m.Manifests))
	}
}

// TestLayoutIndex: a named index replaces the last one of its name, an unnamed one is
// added once, and each image's referrers are beside it.
func TestLayoutIndex(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	idx, ps := platformIndex(t)
	d, _ := idx.Digest()
	for i := 0; i < 2; i++ {
		got, err := (&Layout{Dir: dir}).PublishIndex(context.Background(), idx, ps)
		if err != nil || got != d.String() {
			t.Fatalf("PublishIndex = %q, %v", got, err)
		}
	}
	named := &Layout{Dir: dir, Name: "app"}
	if got, err := named.PublishIndex(context.Background(), idx, ps); err != nil || got != "app@"+d.String() {
		t.Fatalf("named PublishIndex = %q, %v", got, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	indexes, referrers := 0, 0
	for _, desc := range m.Manifests {
		switch {
		case desc.Digest == d:
			indexes++
		case desc.MediaType == types.OCIManifestSchema1:
			referrers++
		}
	}
	if indexes != 2 || referrers != 1 {
		t.Errorf("the layout lists the index %d times (want 2: unnamed once, named once) and %d referrers (want 1):\n%+v", indexes, referrers, m.Manifests)
	}
	stored, err := root.ImageIndex(d)
	if err != nil {
		t.Fatal(err)
	}
	amd, _ := ps[0].Image.Digest()
	child, err := stored.Image(amd)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(child); err != nil {
		t.Errorf("the amd64 image in the layout: %v", err)
	}
}
