//go:build linux && e2e

package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
)

// TestBuildPushLikePublish: pyship build --push reaches registries the way pyship publish
// does: credentials on stdin, a private CA, and the base's layers mounted, not uploaded.
func TestBuildPushLikePublish(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "stdlib-port")
	cache := t.TempDir()

	t.Run("credentials on stdin and a private CA", func(t *testing.T) {
		r := startSecureRegistry(t)
		repo := r.addr + "/e2e/build-push"
		res := pyshipIn(t, r.password+"\n", []string{"PYSHIP_CACHE_DIR=" + cache},
			"build", src, "--push", "--image", repo+":v1", "--username", r.user, "--password-stdin", "--registry-ca", r.caFile)
		if strings.Contains(res.stdout+res.stderr, r.password) {
			t.Errorf("the password shows in pyship's output")
		}
		d := builtDigest(t, res)
		ref, err := name.ParseReference(repo + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(mustRead(t, r.caFile))
		desc, err := remote.Head(ref, remote.WithAuthFromKeychain(authn.NewMultiKeychain(staticAuth{r.user, r.password})),
			remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != d {
			t.Errorf("the registry has %s, pyship printed %s", desc.Digest, d)
		}
	})

	t.Run("the base is mounted", func(t *testing.T) {
		proxy, counter := countingProxy(t, reg)
		repo := proxy + "/e2e/build-mount-" + uniqueTag()
		builtDigest(t, pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir(), "PYSHIP_BASE_MIRROR=" + proxy}, "build", src, "--push", "--image", repo+":v1"))
		bytes, uploads := counter.reset()
		// The image's four blobs, and its bill of materials and provenance with the empty
		// config they share; not the base's layers.
		if uploads != 7 || bytes > 20<<20 {
			t.Errorf("uploaded %d blobs, %d bytes; want 7 blobs and no base layer", uploads, bytes)
		}
	})
}
