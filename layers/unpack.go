package layers

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/sandbox"
)

// Unpack returns directories holding img's file system for the sandbox, topmost first. As
// root, each layer is extracted once (by digest) with its whiteouts in overlayfs form, so
// rebuilding the application reuses the base and dependency layers; otherwise the image is
// flattened into one directory.
func Unpack(img v1.Image, cacheDir string) ([]string, error) {
	if os.Geteuid() != 0 {
		dir, err := rootfs(img, cacheDir)
		if err != nil {
			return nil, err
		}
		return []string{dir}, nil
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(ls))
	for i, l := range ls {
		dir, err := layerTree(l, cacheDir)
		if err != nil {
			return nil, err
		}
		dirs[len(ls)-1-i] = dir
	}
	return dirs, nil
}

// Runnable describes how the sandbox runs img: its file system, command, environment,
// working directory and user, and the port it listens on (port, else the first exposed
// port, else $PORT in its environment, else 8080).
func Runnable(img v1.Image, cacheDir string, port int) (sandbox.BootSpec, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return sandbox.BootSpec{}, err
	}
	c := cf.Config
	args := append(append([]string(nil), c.Entrypoint...), c.Cmd...)
	if len(args) == 0 {
		return sandbox.BootSpec{}, fmt.Errorf("the image has no entrypoint or command to run")
	}
	if port == 0 {
		port = imagePort(c)
	}
	dirs, err := Unpack(img, cacheDir)
	if err != nil {
		return sandbox.BootSpec{}, err
	}
	return sandbox.BootSpec{Layers: dirs, Args: args, Env: c.Env, Dir: c.WorkingDir, User: c.User, Port: port}, nil
}

// imagePort is the port an image's app listens on, by its config.
func imagePort(c v1.Config) int {
	for p := range c.ExposedPorts {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err == nil && n > 0 {
			return n
		}
	}
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 8080
}
