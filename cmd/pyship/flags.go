package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/layers"
)

// errHelp is returned after --help printed the usage.
var errHelp = errors.New("help requested")

// common are the flags every command takes.
type common struct {
	verbose    bool
	cacheDir   string
	baseMirror string
	base       string
	platform   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.verbose, "verbose", false, "log every step in detail, with the installer's output")
	fs.BoolVar(&c.verbose, "v", false, "shorthand for --verbose")
	fs.StringVar(&c.cacheDir, "cache-dir", os.Getenv("PYSHIP_CACHE_DIR"), "cache `DIR` (env PYSHIP_CACHE_DIR; default the user cache dir)")
	fs.StringVar(&c.baseMirror, "base-mirror", os.Getenv("PYSHIP_BASE_MIRROR"), "`REGISTRY` that stands in for Docker Hub when pulling bases (env PYSHIP_BASE_MIRROR)")
	fs.StringVar(&c.base, "base", os.Getenv("PYSHIP_BASE"), "base image `REF`, replacing python:<version>-slim (env PYSHIP_BASE)")
	fs.StringVar(&c.platform, "platform", os.Getenv("PYSHIP_PLATFORM"), "target `OS/ARCH` (env PYSHIP_PLATFORM; default linux and this machine's architecture)")
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
