package layers

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A build whose dependency layer (and build steps' layer) come from a cache runs nothing on
// the base, so its layers are downloaded but not extracted. The user layer still needs the
// base's /etc/passwd and /etc/group: as each layer streams, they are read out of its tar
// into a small record (accounts), kept in the cache beside the extracted trees, and the
// files are found from the records of the base's layers, topmost first, as an overlay
// would show them.

// accountsDir is where the records are kept, one per layer digest.
const accountsDir = "accounts.1"

// accountFiles are the files the user layer is made from.
var accountFiles = []string{"etc/passwd", "etc/group"}

// maxAccountFile bounds an account file pyship reads out of a layer.
const maxAccountFile = 1 << 20

// accounts is what one layer's tar says about the account files.
type accounts struct {
	// Files holds the content of the account files the layer has.
	Files map[string]string `json:"files,omitempty"`
	// Hidden names the account files the layer hides from the layers below it (a
	// whiteout, an opaque or removed /etc) without holding them itself.
	Hidden []string `json:"hidden,omitempty"`
	// Unusual is set when the layer makes an account file or /etc something other than
	// a regular file and a directory (a link, say): then only the extracted file
	// system tells what the file is.
	Unusual bool `json:"unusual,omitempty"`
}

// scanAccounts reads a layer's tar to its end and returns what it says about the
// account files.
func scanAccounts(r io.Reader) (*accounts, error) {
	a := &accounts{Files: map[string]string{}}
	hidden := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case name == "etc":
			if h.Typeflag != tar.TypeDir {
				a.Unusual = true
			}
		case isAccountFile(name):
			if h.Typeflag != tar.TypeReg || h.Size > maxAccountFile {
				a.Unusual = true
				continue
			}
			data, err := io.ReadAll(io.LimitReader(tr, maxAccountFile))
			if err != nil {
				return nil, err
			}
			a.Files[name] = string(data)
		case base == opaqueWhiteout && (dir == "" || dir == "etc"), dir == "" && base == whiteoutPrefix+"etc":
			for _, f := range accountFiles {
				hidden[f] = true
			}
		case dir == "etc" && strings.HasPrefix(base, whiteoutPrefix) && isAccountFile("etc/"+strings.TrimPrefix(base, whiteoutPrefix)):
			hidden["etc/"+strings.TrimPrefix(base, whiteoutPrefix)] = true
		}
	}
	for _, f := range accountFiles {
		if _, held := a.Files[f]; hidden[f] && !held {
			a.Hidden = append(a.Hidden, f)
		}
	}
	return a, nil
}

func isAccountFile(name string) bool {
	for _, f := range accountFiles {
		if name == f {
			return true
		}
	}
	return false
}

// writeAccounts records a layer's accounts in the cache.
func writeAccounts(cacheDir string, d v1.Hash, a *accounts) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	dir := filepath.Join(cacheDir, accountsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, d.Hex+".json"), data)
}

// errNoAccounts says the records cannot tell the account files: the base's file system
// has to be extracted to read them.
var errNoAccounts = errors.New("no record of the base's account files")

// baseAccounts returns the base's account files, by name, from its layers' records; an
// account file no layer has is missing from the map. It fails with errNoAccounts when a
// layer has no record or an unusual one.
func baseAccounts(img v1.Image, cacheDir string) (map[string]string, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	settled := map[string]bool{}
	for i := len(ls) - 1; i >= 0 && len(settled) < len(accountFiles); i-- {
		d, err := ls[i].Digest()
		if err != nil {
			return nil, err
		}
		data, err := readSmall(filepath.Join(cacheDir, accountsDir, d.Hex+".json"), 4*maxAccountFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNoAccounts
		}
		if err != nil {
			return nil, err
		}
		var a accounts
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("the record of layer %s: %w", d, err)
		}
		if a.Unusual {
			return nil, errNoAccounts
		}
		for _, f := range accountFiles {
			if settled[f] {
				continue
			}
			if content, ok := a.Files[f]; ok {
				out[f], settled[f] = content, true
			} else if contains(a.Hidden, f) {
				settled[f] = true
			}
		}
	}
	return out, nil
}

// checkUserTar reads a cached user layer's tar and refuses what pyship's own writer would
// not have put in it: files other than the account files, links, devices, set-id bits.
func checkUserTar(r io.Reader) error {
	return checkTar(r, func(name string, h *tar.Header) error {
		if h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg && isAccountFile(name) {
			return nil
		}
		return fmt.Errorf("the layer holds %q of type %q, where pyship writes only directories and %s", h.Name, h.Typeflag, strings.Join(accountFiles, ", "))
	})
}
