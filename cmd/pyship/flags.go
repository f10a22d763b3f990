package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/publish"
)

// errHelp is returned after --help printed the usage.
var errHelp = errors.New("help requested")

// inAction reports whether pyship runs as this repository's GitHub Action, whose step
// sets PYSHIP_ACTION: errors then name the Action's inputs, not the flags it passes.
func inAction() bool { return os.Getenv("PYSHIP_ACTION") == "true" }

// option names a setting as its user wrote it: the Action's input, else the flag.
func option(flag, input string) string {
	if inAction() {
		return "the input " + input
	}
	return flag
}

// common are the flags every command takes.
type common struct {
	verbose    bool
	cacheDir   string
	baseMirror string
	base       string
	platform   string
	installer  string
	cacheRepo  string
	labels     stringList
	// inventory is set by a command that will write a bill of materials: the build reads
	// the base for it while it runs.
	inventory bool
	// keychain authenticates the build's own registry requests (base pulls, the registry
	// cache): the push's credentials once a command has them.
	keychain authn.Keychain
	// registryCA and registryTimeout shape the one transport to registries, made once
	// and kept in transport.
	registryCA      string
	registryTimeout string
	transport       http.RoundTripper
}

func (c *common) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.verbose, "verbose", false, "log every step in detail, with the installer's output")
	fs.BoolVar(&c.verbose, "v", false, "shorthand for --verbose")
	fs.StringVar(&c.cacheDir, "cache-dir", os.Getenv("PYSHIP_CACHE_DIR"), "cache `DIR` (env PYSHIP_CACHE_DIR; default the user cache dir)")
	fs.StringVar(&c.baseMirror, "base-mirror", os.Getenv("PYSHIP_BASE_MIRROR"), "`REGISTRY` that stands in for Docker Hub when pulling bases (env PYSHIP_BASE_MIRROR)")
	fs.StringVar(&c.base, "base", os.Getenv("PYSHIP_BASE"), "base image `REF`, replacing python:<version>-slim (env PYSHIP_BASE)")
	fs.StringVar(&c.platform, "platform", os.Getenv("PYSHIP_PLATFORM"), "target `OS/ARCH` (env PYSHIP_PLATFORM; default linux and this machine's architecture)")
	fs.StringVar(&c.installer, "installer", os.Getenv("PYSHIP_INSTALLER"), "`TOOL` that installs the dependencies: uv (the default) or pip (env PYSHIP_INSTALLER)")
	fs.StringVar(&c.cacheRepo, "cache-repo", os.Getenv("PYSHIP_CACHE_REPO"), "`REPO`sitory that keeps dependency layers by cache key, shared by every build that reaches it (env PYSHIP_CACHE_REPO)")
	fs.Var(&c.labels, "label", "add the label `KEY=VALUE` to the image, over pyship.toml's [labels] (repeatable)")
	fs.StringVar(&c.registryCA, "registry-ca", "", "trust registries' certificates from this PEM `FILE`, besides the system's (SSL_CERT_FILE works too)")
	fs.StringVar(&c.registryTimeout, "registry-timeout", os.Getenv(publish.TimeoutEnv),
		"how long a registry may keep pyship waiting with no progress, as a `DURATION` like 30s or 5m (env "+publish.TimeoutEnv+"; default "+publish.DefaultTimeout.String()+")")
}

// registry returns the transport for every request to a registry: pushes, base pulls,
// image pulls. Each command makes one.
func (c *common) registry() (http.RoundTripper, error) {
	if c.transport != nil {
		return c.transport, nil
	}
	opts := publish.TransportOptions{CAFile: c.registryCA}
	if c.registryTimeout != "" {
		d, err := time.ParseDuration(c.registryTimeout)
		if err != nil || d <= 0 {
			return nil, usagef("--registry-timeout (or %s) %q: want a positive duration like 30s or 5m", publish.TimeoutEnv, c.registryTimeout)
		}
		opts.Timeout = d
	}
	t, err := publish.NewTransport(opts)
	if err != nil {
		return nil, usagef("--registry-ca: %v", err)
	}
	c.transport = t
	return t, nil
}

// imageLabels parses --label KEY=VALUE flags; the base's name and digest are pyship's.
func (c *common) imageLabels() (map[string]string, error) {
	if len(c.labels) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, l := range c.labels {
		k, v, ok := strings.Cut(l, "=")
		switch {
		case !ok || strings.TrimSpace(k) == "":
			return nil, usagef("--label %q: want KEY=VALUE, like org.opencontainers.image.licenses=MIT", l)
		case strings.HasPrefix(k, "org.opencontainers.image.base."):
			return nil, usagef("--label %q: pyship sets %s itself, from the base it builds on", l, k)
		}
		out[k] = v
	}
	return out, nil
}

// cacheRepository parses --cache-repo, or returns nil without one.
func (c *common) cacheRepository() (*name.Repository, error) {
	if c.cacheRepo == "" {
		return nil, nil
	}
	repo, err := name.NewRepository(lowerGitHubNames(c.cacheRepo))
	if err != nil {
		return nil, usagef("%s %q: %v; give a repository like ghcr.io/owner/app", option("--cache-repo (or PYSHIP_CACHE_REPO)", "cache-repo"), c.cacheRepo, err)
	}
	return &repo, nil
}

func (c *common) logger() hclog.Logger {
	level := hclog.Info
	if c.verbose {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "pyship", Output: os.Stderr, Level: level, DisableTime: true})
}

// cache returns the cache directory, created private (or made so) before anything is
// written in it.
func (c *common) cache() (string, error) {
	dir := c.cacheDir
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", usagef("--cache-dir %q: %v", dir, err)
		}
		dir = abs
	} else {
		user, err := os.UserCacheDir()
		if err != nil {
			return "", usagef("no cache directory: %v; set PYSHIP_CACHE_DIR or --cache-dir", err)
		}
		dir = filepath.Join(user, "pyship")
	}
	if err := layers.PrepareCache(dir, c.logger()); err != nil {
		return "", fail(exitBuild, fmt.Errorf("%w\nhint: set PYSHIP_CACHE_DIR or --cache-dir to a directory you can write", err))
	}
	return dir, nil
}

// parse parses flags that may come before or after the one positional PATH argument.
func parse(fs *flag.FlagSet, args []string) (string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(os.Stderr)
				fmt.Fprintf(os.Stderr, "Usage: pyship %s [flags] [PATH]\n\nFlags:\n", fs.Name())
				fs.PrintDefaults()
				return "", fail(exitUsage, errHelp)
			}
			return "", usagef("%v (see pyship %s --help)", err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	switch len(positional) {
	case 0:
		return ".", nil
	case 1:
		return positional[0], nil
	default:
		return "", usagef("expected one PATH, got %d: %s", len(positional), strings.Join(positional, " "))
	}
}
