package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
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
	// AuthHint, when set, replaces the hint about credentials when the registry refused
	// them: a caller that took the credentials from elsewhere (the GitHub Action's inputs)
	// names where.
	AuthHint string
}

func (e *Error) Error() string {
	hint := "check the image name, that the registry is reachable, and your credentials (docker login or ~/.docker/config.json)"
	var stall *StallError
	switch {
	case e.AuthHint != "" && e.Unauthorized():
		hint = e.AuthHint
	case errors.As(e.Err, &stall):
		hint = fmt.Sprintf("check that %s is up and reachable from here; blobs already pushed stay, and no tag was set", stall.Host)
	case e.Temporary():
		hint = "the registry failed in a way that may pass; try again"
	}
	// The error may quote what the registry sent: a short excerpt, escaped.
	return fmt.Sprintf("publishing to %s: %s\nhint: %s", e.Target, excerpt(e.Err.Error(), maxQuoted), hint)
}

func (e *Error) Unwrap() error { return e.Err }

// Unauthorized reports whether the registry refused the credentials, or their lack.
func (e *Error) Unauthorized() bool {
	var terr *transport.Error
	if !errors.As(e.Err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
			return true
		}
	}
	return false
}

// Temporary reports whether the failure may go away on its own (server errors, timeouts).
func (e *Error) Temporary() bool {
	var terr *transport.Error
	return errors.As(e.Err, &terr) && terr.Temporary()
}

// Registry pushes to a registry: the blobs it lacks, then the manifest by digest, then
// each tag. A failure before the end leaves no tag pointing at a missing manifest, and no
// tag moved.
type Registry struct {
	// Ref names the repository, and a tag when it has one written out: the tag that
	// name.ParseReference implies (latest) is not set.
	Ref name.Reference
	// Tags are more tags to point at the image.
	Tags     []string
	Keychain authn.Keychain
	// Transport carries the requests; default NewTransport with the default timeout.
	Transport http.RoundTripper
	// Backoff is the retry schedule for 5xx answers, timeouts and resets.
	Backoff remote.Backoff
	// MountFrom is the base image's repository; MountLayers are the layers it has. On the
	// same registry they are mounted instead of uploaded.
	MountFrom   name.Reference
	MountLayers []v1.Hash
	// Referrers are artifacts whose subject is the image (its bill of materials): each is
	// pushed after the image and before any tag, with the registry's referrers API or,
	// where it has none, the referrers tag schema.
	Referrers []v1.Image
}

// DefaultBackoff retries five times, waiting 1, 2, 4, 8 and 16 seconds.
var DefaultBackoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5}

func (r *Registry) options(ctx context.Context) []remote.Option {
	backoff := r.Backoff
	if backoff.Steps == 0 {
		backoff = DefaultBackoff
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain()),
		remote.WithTransport(r.transport()),
		remote.WithRetryBackoff(backoff),
	}
}

func (r *Registry) transport() http.RoundTripper {
	if r.Transport != nil {
		return r.Transport
	}
	return defaultTransport()
}

var defaultTransport = sync.OnceValue(func() http.RoundTripper {
	t, _ := NewTransport(TransportOptions{}) // fails only on a CA file
	return t
})

// Check fails fast, before anything is built, when the registry cannot be reached or will
// not let us push: it starts an upload, then cancels it. It stops when ctx is done.
func (r *Registry) Check(ctx context.Context) error {
	repo := r.Ref.Context()
	if err := untilDone(ctx, func() error { return r.check(ctx, repo) }); err != nil {
		return &Error{Target: repo.String(), Err: err}
	}
	return nil
}

// check is remote.CheckPushPermission with a context: that one uses none, so nothing could
// stop it.
func (r *Registry) check(ctx context.Context, repo name.Repository) error {
	auth, err := authn.Resolve(ctx, r.keychain(), repo)
	if err != nil {
		return fmt.Errorf("finding credentials for %s: %w", repo, err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, r.transport(), []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return err
	}
	// Redirects on the same host are followed; elsewhere, as ggcr, they are not (SSRF).
	client := &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host || len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/uploads/"}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusAccepted); err != nil {
		return err
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil
	}
	// The upload only tested the permission; cancelling it frees what the registry
	// reserved. Failing to cancel is not the user's problem.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if del, err := http.NewRequestWithContext(cctx, http.MethodDelete, loc.String(), nil); err == nil {
		if resp, err := client.Do(del); err == nil {
			resp.Body.Close()
		}
	}
	return nil
}

// untilDone runs f and returns its error, or ctx's as soon as ctx is done: ggcr sleeps
// between retries without watching the context, for up to DefaultBackoff's 16 seconds.
// What f still does after that fails on the done context.
func untilDone(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// TagNames are the tags Publish sets: the reference's own (when written out), then Tags,
// without repeats.
func (r *Registry) TagNames() []string {
	var tags []string
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	if t, ok := ExplicitTag(r.Ref); ok {
		add(t)
	}
	for _, t := range r.Tags {
		add(t)
	}
	return tags
}

// ExplicitTag returns the tag ref was written with: name.ParseReference gives a reference
// written without one the tag latest, which nobody asked for.
func ExplicitTag(ref name.Reference) (string, bool) {
	t, ok := ref.(name.Tag)
	if !ok {
		return "", false
	}
	s, _, _ := strings.Cut(t.String(), "@")
	if !strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
		return "", false
	}
	return t.TagStr(), true
}

// tagRule is the OCI distribution spec's grammar for a tag.
var tagRule = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// CheckTag reports whether tag is a valid tag. ggcr accepts some that registries refuse
// (like "-lead"), and a registry that refuses the tag does so after the manifest is in.
func CheckTag(tag string) error {
	if !tagRule.MatchString(tag) {
		return fmt.Errorf("%q is not a valid tag: a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')", tag)
	}
	return nil
}

// Publish implements Interface.
func (r *Registry) Publish(ctx context.Context, img v1.Image) (string, error) {
	d, err := r.pushImage(ctx, Platform{Image: img, MountFrom: r.MountFrom, MountLayers: r.MountLayers, Referrers: r.Referrers})
	if err != nil {
		return "", err
	}
	return r.tag(ctx, d, img)
}

// Platform is one image of an image index, with what is pushed with it.
type Platform struct {
	Image v1.Image
	// MountFrom and MountLayers are as Registry's, for this image's base.
	MountFrom   name.Reference
	MountLayers []v1.Hash
	// Referrers are artifacts whose subject is this image.
	Referrers []v1.Image
}

// IndexPublisher writes an image index of one image per platform.
type IndexPublisher interface {
	PublishIndex(ctx context.Context, idx v1.ImageIndex, images []Platform) (string, error)
}

var (
	_ IndexPublisher = (*Registry)(nil)
	_ IndexPublisher = (*Layout)(nil)
)

// PublishIndex pushes each image as Publish does (blobs, manifest by digest, referrers),
// then the index by digest, then each tag, to the index: a failure before the end moves no
// tag.
func (r *Registry) PublishIndex(ctx context.Context, idx v1.ImageIndex, images []Platform) (string, error) {
	if err := inIndex(idx, images); err != nil {
		return "", err
	}
	for _, p := range images {
		if _, err := r.pushImage(ctx, p); err != nil {
			return "", err
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	repo := r.Ref.Context()
	if err := untilDone(ctx, func() error { return remote.WriteIndex(repo.Digest(d.String()), idx, r.options(ctx)...) }); err != nil {
		return "", &Error{Target: repo.String(), Err: err}
	}
	return r.tag(ctx, d, idx)
}

// inIndex checks that the images are the index's, before anything is written.
func inIndex(idx v1.ImageIndex, images []Platform) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, p := range images {
		d, err := p.Image.Digest()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(m.Manifests, func(desc v1.Descriptor) bool { return desc.Digest == d }) {
			return fmt.Errorf("the image %s is not in the index", d)
		}
	}
	return nil
}

// pushImage pushes one image by digest, mounting its base's layers, then its referrers.
func (r *Registry) pushImage(ctx context.Context, p Platform) (v1.Hash, error) {
	img := p.Image
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	repo := r.Ref.Context()
	byDigest := repo.Digest(d.String())
	opts := r.options(ctx)
	pushed := img
	if p.MountFrom != nil && len(p.MountLayers) > 0 {
		set := map[v1.Hash]bool{}
		for _, h := range p.MountLayers {
			set[h] = true
		}
		pushed = &mountableImage{Image: img, from: p.MountFrom, digests: set}
	}
	if err := untilDone(ctx, func() error { return remote.Write(byDigest, pushed, opts...) }); err != nil {
		return v1.Hash{}, &Error{Target: repo.String(), Err: err}
	}
	if err := refersTo(p.Referrers, d); err != nil {
		return v1.Hash{}, err
	}
	for _, a := range p.Referrers {
		ad, err := a.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		if err := untilDone(ctx, func() error { return remote.Write(repo.Digest(ad.String()), a, opts...) }); err != nil {
			return v1.Hash{}, &Error{Target: repo.Digest(ad.String()).String(), Err: fmt.Errorf("attaching an artifact to the image: %w", err)}
		}
	}
	return d, nil
}

// tag points each tag at what was pushed as d, and returns the reference by digest.
func (r *Registry) tag(ctx context.Context, d v1.Hash, t remote.Taggable) (string, error) {
	repo := r.Ref.Context()
	opts := r.options(ctx)
	for _, name := range r.TagNames() {
		if err := untilDone(ctx, func() error { return remote.Tag(repo.Tag(name), t, opts...) }); err != nil {
			return "", &Error{Target: repo.Tag(name).String(), Err: err}
		}
	}
	return repo.Digest(d.String()).String(), nil
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
	// Referrers are artifacts whose subject is the image, added to the layout beside it.
	Referrers []v1.Image
}

// Publish implements Interface.
func (l *Layout) Publish(ctx context.Context, img v1.Image) (string, error) {
	p, err := l.open()
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := refersTo(l.Referrers, d); err != nil {
		return "", err
	}
	// The evidence first: a name never points at an image without it.
	for _, a := range l.Referrers {
		if err := appendOnce(p, a); err != nil {
			return "", &Error{Target: l.Dir, Err: err}
		}
	}
	out := d.String()
	if l.Name == "" {
		// An unnamed image only has to be there; entries that name it stay.
		err = appendOnce(p, img)
	} else {
		const refName = "org.opencontainers.image.ref.name"
		err = p.ReplaceImage(img, match.Name(l.Name), layout.WithAnnotations(map[string]string{refName: l.Name}))
		out = l.Name + "@" + out
	}
	if err != nil {
		return "", &Error{Target: l.Dir, Err: err}
	}
	return out, nil
}

// PublishIndex implements IndexPublisher: the index, named as Publish names an image, and
// each image's referrers beside it.
func (l *Layout) PublishIndex(ctx context.Context, idx v1.ImageIndex, images []Platform) (string, error) {
	if err := inIndex(idx, images); err != nil {
		return "", err
	}
	for _, im := range images {
		d, err := im.Image.Digest()
		if err != nil {
			return "", err
		}
		if err := refersTo(im.Referrers, d); err != nil {
			return "", err
		}
	}
	p, err := l.open()
	if err != nil {
		return "", err
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	// The evidence first: a name never points at an index without it.
	for _, im := range images {
		for _, a := range im.Referrers {
			if err := appendOnce(p, a); err != nil {
				return "", &Error{Target: l.Dir, Err: err}
			}
		}
	}
	out := d.String()
	if l.Name == "" {
		// An unnamed index only has to be there.
		var there bool
		if there, err = inLayout(p, d); err == nil && !there {
			err = p.AppendIndex(idx)
		}
	} else {
		const refName = "org.opencontainers.image.ref.name"
		err = p.ReplaceIndex(idx, match.Name(l.Name), layout.WithAnnotations(map[string]string{refName: l.Name}))
		out = l.Name + "@" + out
	}
	if err != nil {
		return "", &Error{Target: l.Dir, Err: err}
	}
	return out, nil
}

// open opens the layout, making it when it is not there.
func (l *Layout) open() (layout.Path, error) {
	p, err := layout.FromPath(l.Dir)
	if err == nil {
		return p, nil
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return "", &Error{Target: l.Dir, Err: err}
	}
	if p, err = layout.Write(l.Dir, empty.Index); err != nil {
		return "", &Error{Target: l.Dir, Err: err}
	}
	return p, nil
}

// refersTo checks that every artifact's subject is the image d, before anything is written.
func refersTo(arts []v1.Image, d v1.Hash) error {
	for i, a := range arts {
		m, err := a.Manifest()
		if err != nil {
			return err
		}
		if m.Subject == nil || m.Subject.Digest != d {
			return fmt.Errorf("artifact %d to attach is not about the image %s", i, d)
		}
	}
	return nil
}

// appendOnce adds img to the layout's index unless an entry has its digest.
func appendOnce(p layout.Path, img v1.Image) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	there, err := inLayout(p, d)
	if err != nil || there {
		return err
	}
	return p.AppendImage(img)
}

// inLayout reports whether the layout's index lists d.
func inLayout(p layout.Path, d v1.Hash) (bool, error) {
	idx, err := p.ImageIndex()
	if err != nil {
		return false, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(m.Manifests, func(desc v1.Descriptor) bool { return desc.Digest == d }), nil
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

// Pull reads the image Ref names, for platform, the way Publish writes: the same
// credentials, transport and retries. Its layers are fetched as they are read, under ctx.
func (r *Registry) Pull(ctx context.Context, platform v1.Platform) (v1.Image, error) {
	var img v1.Image
	err := untilDone(ctx, func() error {
		var err error
		img, err = remote.Image(r.Ref, append(r.options(ctx), remote.WithPlatform(platform))...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}
