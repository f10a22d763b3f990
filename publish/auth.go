package publish

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Credentials are a username and password given on the command line, for one registry.
type Credentials struct {
	Registry string
	Username string
	Password string
}

// Keychain finds credentials for a registry: those given, then GITHUB_TOKEN for ghcr.io,
// then Docker's configuration (~/.docker/config.json or $DOCKER_CONFIG: auths,
// credHelpers, credsStore).
func Keychain(given *Credentials) authn.Keychain {
	chains := []authn.Keychain{}
	if given != nil {
		chains = append(chains, staticKeychain{*given})
	}
	if token := os.Getenv("GITHUB_TOKEN"); token != "" {
		user := os.Getenv("GITHUB_ACTOR")
		if user == "" {
			user = "x-access-token"
		}
		chains = append(chains, staticKeychain{Credentials{Registry: "ghcr.io", Username: user, Password: token}})
	}
	return authn.NewMultiKeychain(append(chains, authn.DefaultKeychain)...)
}

type staticKeychain struct{ c Credentials }

// Resolve implements authn.Keychain.
func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.c.Registry {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.c.Username, Password: k.c.Password}, nil
}

// Transport is the HTTP transport to registries: the system's CAs (SSL_CERT_FILE and
// SSL_CERT_DIR are honoured), plus caFile when set.
func Transport(caFile string) (http.RoundTripper, error) {
	if caFile == "" {
		return remote.DefaultTransport, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the registry CA %q: %w", caFile, err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%q holds no PEM certificate", caFile)
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
