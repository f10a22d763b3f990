package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyConfig is the OCI empty descriptor's content: an artifact has no image config.
var emptyConfig = []byte("{}")

// CreatedAnnotation is the annotation an artifact gives its creation time in.
const CreatedAnnotation = "org.opencontainers.image.created"

// Artifact is an OCI artifact whose subject is the image subject: a manifest of
// artifactType mt, an empty config, and one layer, data, of media type mt. Its creation
// annotation is created, so the same data about the same image makes the same manifest;
// annotations adds to its manifest's.
func Artifact(subject v1.Descriptor, mt types.MediaType, data []byte, created time.Time, annotations map[string]string) (v1.Image, error) {
	layer := static.NewLayer(data, mt)
	ld, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	cd, _, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	ann := map[string]string{CreatedAnnotation: timestamp(created)}
	maps.Copy(ann, annotations)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(mt),
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Size: int64(len(emptyConfig)), Digest: cd},
		Layers:        []v1.Descriptor{{MediaType: mt, Size: ld.Size, Digest: ld.Digest}},
		Annotations:   ann,
		Subject:       &sub,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, layer: layer, digest: ld.Digest})
}

// artifact is an artifact manifest with its one layer.
type artifact struct {
	manifest []byte
	layer    v1.Layer
	digest   v1.Hash
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.digest {
		return a.layer, nil
	}
	return nil, fmt.Errorf("the artifact has no layer %s", h)
}

// maxArtifact bounds what ReadArtifact reads.
const maxArtifact = 64 << 20

// ErrNotFound says no artifact of the type asked for refers to the image.
var ErrNotFound = errors.New("no such artifact refers to the image")

// ReadArtifact returns the data of an artifact of type mt: the one layer of img, checked
// to be of that type.
func ReadArtifact(img v1.Image, mt types.MediaType) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.ArtifactType != string(mt) || len(m.Layers) != 1 || m.Layers[0].MediaType != mt || m.Layers[0].Size > maxArtifact {
		return nil, fmt.Errorf("the manifest is not one artifact of type %s", mt)
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxArtifact+1))
	if err != nil {
		return nil, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if h != m.Layers[0].Digest {
		return nil, fmt.Errorf("the artifact's data hashes to %s, not %s", h, m.Layers[0].Digest)
	}
	return data, nil
}
