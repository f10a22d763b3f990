package publish

import (
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// mountableImage offers some of an image's layers for mounting from another repository:
// when the target registry has them there (a base image on the same registry), they are
// linked instead of uploaded.
type mountableImage struct {
	v1.Image
	from    name.Reference
	digests map[v1.Hash]bool
}

func (m *mountableImage) wrap(l v1.Layer) (v1.Layer, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	if !m.digests[d] {
		return l, nil
	}
	return &remote.MountableLayer{Layer: l, Reference: m.from}, nil
}

// Layers implements v1.Image.
func (m *mountableImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		if out[i], err = m.wrap(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LayerByDigest implements v1.Image.
func (m *mountableImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l)
}
