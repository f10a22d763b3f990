package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Interface writes an image somewhere and returns how to refer to it by digest.
type Interface interface {
	Publish(ctx context.Context, img v1.Image) (string, error)
}

var (
	_ Interface = (*Registry)(nil)
	_ Interface = (*Layout)(nil)
	_ Interface = (*Tarball)(nil)
)

// Error reports a failed publish, and whether trying again may help.
type Error struct {
	Target string
	Err    error
}

func (e *Error) Error() string {
	hint := "check the image name, that the registry is reachable, and your credentials (docker login or ~/.docker/config.json)"
	if e.Temporary() {
		hint = "the registry failed in a way that may pass; try again"
	}
	return fmt.Sprintf("publishing to %s: %v\nhint: %s", e.Target, e.Err, hint)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure may go away on its own (server errors, timeouts).
func (e *Error) Temporary() bool {
	var terr *transport.Error
	return errors.As(e.Err, &terr) && terr.Temporary()
}

// Registry pushes to a registry: the blobs it lacks, then the manifest by digest, then
// each tag. A failure before the end leaves no tag pointing at a missing manifest, and no
// tag moved.
type Registry struct {
	// Ref names the repository, and a tag when it has one.
	Ref name.Reference
	// Tags are more tags to point at the image.
	Tags     []string
	Keychain authn.Keychain
	// Transport carries the requests; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Backoff is the retry schedule for 5xx answers, timeouts and resets.
	Backoff remote.Backoff
	// MountFrom is the base image's repository; MountLayers are the layers it has. On the
	// same registry they are mounted instead of uploaded.
	MountFrom   name.Reference
	MountLayers []v1.Hash
}

// DefaultBackoff retries five times, waiting 1, 2, 4, 8 and 16 seconds.
var DefaultBackoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5}

func (r *Registry) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain())}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	backoff := r.Backoff
	if backoff.Steps == 0 {
		backoff = DefaultBackoff
	}
	return append(opts, remote.WithRetryBackoff(backoff))
}

// Check fails fast, before anything is built, when the registry cannot be reached or will
// not let us push.
func (r *Registry) Check() error {
	t := r.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	if err := remote.CheckPushPermission(r.Ref, r.keychain(), t); err != nil {
		return &Error{Target: r.Ref.Context().String(), Err: err}
	}
	return nil
}

// TagNames are the tags Publish sets: the reference's own, then Tags, without repeats.
func (r *Registry) TagNames() []string {
	var tags []string
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	if t, ok := r.Ref.(name.Tag); ok {
		add(t.TagStr())
	}
	for _, t := range r.Tags {
		add(t)
	}
	return tags
}

// Publish implements Interface.
func (r *Registry) Publish(ctx context.Context, img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	repo := r.Ref.Context()
	byDigest := repo.Digest(d.String())
	opts := r.options(ctx)
	pushed := img
	if r.MountFrom != nil && len(r.MountLayers) > 0 {
		set := map[v1.Hash]bool{}
		for _, h := range r.MountLayers {
			set[h] = true
		}
		pushed = &mountableImage{Image: img, from: r.MountFrom, digests: set}
	}
	if err := remote.Write(byDigest, pushed, opts...); err != nil {
		return "", &Error{Target: repo.String(), Err: err}
	}
	for _, t := range r.TagNames() {
		if err := remote.Tag(repo.Tag(t), img, opts...); err != nil {
			return "", &Error{Target: repo.Tag(t).String(), Err: err}
		}
	}
	return byDigest.String(), nil
}

// Refs lists every reference Publish made: each tag, then the digest.
func (r *Registry) Refs(digest string) []string {
	var refs []string
	for _, t := range r.TagNames() {
		refs = append(refs, r.Ref.Context().Tag(t).String())
	}
	return append(refs, r.Ref.Context().Digest(digest).String())
}

func (r *Registry) keychain() authn.Keychain {
	if r.Keychain == nil {
		return authn.DefaultKeychain
	}
	return r.Keychain
}

// Layout writes into an OCI image layout directory, replacing any image of the same name.
type Layout struct {
	Dir string
	// Name, when set, is the image's org.opencontainers.image.ref.name annotation.
	Name string
}

// Publish implements Interface.
func (l *Layout) Publish(ctx context.Context, img v1.Image) (string, error) {
	p, err := layout.FromPath(l.Dir)
	if err != nil {
		if err := os.MkdirAll(l.Dir, 0o755); err != nil {
			return "", &Error{Target: l.Dir, Err: err}
		}
		if p, err = layout.Write(l.Dir, empty.Index); err != nil {
			return "", &Error{Target: l.Dir, Err: err}
		}
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	if l.Name == "" {
		// An unnamed image only has to be there; entries that name it stay.
		if _, err := p.Image(d); err != nil {
			if err := p.AppendImage(img); err != nil {
				return "", &Error{Target: l.Dir, Err: err}
			}
		}
		return d.String(), nil
	}
	const refName = "org.opencontainers.image.ref.name"
	if err := p.ReplaceImage(img, match.Name(l.Name), layout.WithAnnotations(map[string]string{refName: l.Name})); err != nil {
		return "", &Error{Target: l.Dir, Err: err}
	}
	return l.Name + "@" + d.String(), nil
}

// Tarball writes a file that `docker load` and `podman load` accept.
type Tarball struct {
	Path string
	Tag  name.Tag
}

// Publish implements Interface.
func (t *Tarball) Publish(ctx context.Context, img v1.Image) (string, error) {
	tmp := t.Path + ".tmp"
	if err := tarball.WriteToFile(tmp, t.Tag, img); err != nil {
		os.Remove(tmp)
		return "", &Error{Target: t.Path, Err: err}
	}
	if err := os.Rename(tmp, t.Path); err != nil {
		return "", &Error{Target: t.Path, Err: err}
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return t.Tag.Context().Digest(d.String()).String(), nil
}
