package publish

import (
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
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
