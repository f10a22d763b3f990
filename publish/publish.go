package publish

import (
	"context"
	"errors"
	"fmt"
	"os"

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

// Registry pushes to a registry.
type Registry struct {
	Ref      name.Reference
	Keychain authn.Keychain
}

// Check fails fast, before anything is built, when the registry cannot be reached or will
// not let us push.
func (r *Registry) Check() error {
	if err := remote.CheckPushPermission(r.Ref, r.keychain(), remote.DefaultTransport); err != nil {
		return &Error{Target: r.Ref.Context().String(), Err: err}
	}
	return nil
}

// Publish implements Interface. The manifest goes last, so a failed push leaves no tag.
func (r *Registry) Publish(ctx context.Context, img v1.Image) (string, error) {
	if err := remote.Write(r.Ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain())); err != nil {
		return "", &Error{Target: r.Ref.String(), Err: err}
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return r.Ref.Context().Digest(d.String()).String(), nil
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
