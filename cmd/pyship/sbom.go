package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/attest"
	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/publish"
)

// sbomNone turns the bill of materials off.
const sbomNone = "none"

// registerSBOM adds --sbom-format to a command that writes or pushes images.
func registerSBOM(fs *flag.FlagSet, format *string) {
	def := os.Getenv("PYSHIP_SBOM_FORMAT")
	if def == "" {
		def = attest.FormatSPDX
	}
	fs.StringVar(format, "sbom-format", def, "`FORMAT` of the bill of materials attached to the image: spdx (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6 JSON) or none (env PYSHIP_SBOM_FORMAT)")
}

// checkSBOMFormat refuses a format pyship does not write, before anything is built.
func checkSBOMFormat(format string) error {
	if format == sbomNone {
		return nil
	}
	if _, err := attest.MediaType(format); err != nil {
		return usagef("--sbom-format (or PYSHIP_SBOM_FORMAT) %q: want spdx, cyclonedx or none", format)
	}
	return nil
}

// sbomArtifacts returns the bill of materials of the built image, as an artifact to attach
// beside it (none with format "none"). repo names where the image goes, when it has a
// name.
func sbomArtifacts(format string, res *layers.Result, repo, cacheDir string, log hclog.Logger) ([]v1.Image, error) {
	if format == sbomNone {
		return nil, nil
	}
	start := time.Now()
	mt, err := attest.MediaType(format)
	if err != nil {
		return nil, err
	}
	inv, err := attest.Scan(res.Image, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("reading the image for its bill of materials: %w", err)
	}
	desc, err := partial.Descriptor(res.Image)
	if err != nil {
		return nil, err
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	data, err := attest.SBOM(format, inv, attest.Subject{Repository: repo, Digest: desc.Digest, Created: cf.Created.Time, Tool: version})
	if err != nil {
		return nil, err
	}
	a, err := attest.Artifact(*desc, mt, data, cf.Created.Time)
	if err != nil {
		return nil, err
	}
	log.Info("bill of materials written", "format", format, "python", len(inv.Python), "debian", len(inv.Debian), "took", since(start))
	return []v1.Image{a}, nil
}

// runSBOM prints the bill of materials attached to an image in a registry or an OCI layout.
func runSBOM(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sbom", flag.ContinueOnError)
	format := fs.String("format", attest.FormatSPDX, "`FORMAT` to print: spdx or cyclonedx")
	var c common
	c.register(fs)
	var rf registryFlags
	rf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: pyship sbom [flags] REF\n\nPrints the bill of materials attached to the image REF: a registry reference\n(REGISTRY/REPOSITORY[:TAG|@DIGEST]), an OCI layout directory holding one image, or DIR@DIGEST.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fail(exitUsage, err)
	}
	if fs.NArg() != 1 {
		return usagef("pyship sbom takes one image: a registry reference, an OCI layout directory, or DIR@DIGEST")
	}
	mt, err := attest.MediaType(*format)
	if err != nil {
		return usagef("--format %q: want spdx or cyclonedx", *format)
	}
	ref := fs.Arg(0)
	var data []byte
	if dir, digest, isDir := layoutRef(ref); isDir {
		data, err = layoutSBOM(dir, digest, mt)
	} else {
		data, err = registrySBOM(ctx, ref, mt, &c, &rf)
	}
	if errors.Is(err, attest.ErrNotFound) {
		return fail(exitPublish, fmt.Errorf("%s has no %s bill of materials attached\nhint: pyship attaches one when it writes or pushes an image (unless --sbom-format none); ask for the other format with --format", ref, *format))
	}
	if err != nil {
		return fail(exitPublish, fmt.Errorf("reading the bill of materials of %s: %w", ref, err))
	}
	_, err = os.Stdout.Write(data)
	return err
}

// layoutRef splits DIR or DIR@DIGEST when DIR is a directory.
func layoutRef(ref string) (dir, digest string, ok bool) {
	dir = ref
	if i := strings.LastIndex(ref, "@sha256:"); i > 0 {
		dir, digest = ref[:i], ref[i+1:]
	}
	info, err := os.Stat(filepath.Clean(dir))
	return dir, digest, err == nil && info.IsDir()
}

// layoutSBOM finds the artifact of type mt whose subject is the image (digest, or the
// layout's one image) in the OCI layout dir.
func layoutSBOM(dir, digest string, mt types.MediaType) ([]byte, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var subject v1.Hash
	if digest != "" {
		if subject, err = v1.NewHash(digest); err != nil {
			return nil, err
		}
	} else {
		var images []v1.Hash
		for _, desc := range m.Manifests {
			if desc.ArtifactType == "" || desc.ArtifactType == string(types.OCIConfigJSON) {
				images = append(images, desc.Digest)
			}
		}
		if len(images) != 1 {
			return nil, fmt.Errorf("the layout holds %d images; name one as %s@DIGEST", len(images), dir)
		}
		subject = images[0]
	}
	for _, desc := range m.Manifests {
		img, err := p.Image(desc.Digest)
		if err != nil {
			continue
		}
		am, err := img.Manifest()
		if err != nil || am.Subject == nil || am.Subject.Digest != subject || am.ArtifactType != string(mt) {
			continue
		}
		return attest.ReadArtifact(img, mt)
	}
	return nil, attest.ErrNotFound
}

// registrySBOM finds the artifact of type mt that refers to the image ref in its registry,
// through the referrers API or the referrers tag schema.
func registrySBOM(ctx context.Context, ref string, mt types.MediaType, c *common, rf *registryFlags) ([]byte, error) {
	r, err := name.ParseReference(ref, rf.nameOptions()...)
	if err != nil {
		return nil, fail(exitUsage, fmt.Errorf("%q is not an image reference: %w", ref, err))
	}
	transport, err := c.registry()
	if err != nil {
		return nil, err
	}
	keychain := c.keychain
	if keychain == nil {
		keychain = publish.Keychain(nil)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(transport), remote.WithAuthFromKeychain(keychain)}
	desc, err := remote.Head(r, opts...)
	if err != nil {
		return nil, err
	}
	subject := r.Context().Digest(desc.Digest.String())
	idx, err := remote.Referrers(subject, append(opts, remote.WithFilter("artifactType", string(mt)))...)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.ArtifactType != string(mt) {
			continue
		}
		img, err := remote.Image(r.Context().Digest(d.Digest.String()), opts...)
		if err != nil {
			return nil, err
		}
		am, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		if am.Subject == nil || am.Subject.Digest != desc.Digest {
			continue
		}
		return attest.ReadArtifact(img, mt)
	}
	return nil, attest.ErrNotFound
}
