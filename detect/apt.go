package detect

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
)

// System are the Debian packages the image gets on top of the base, and where they are
// asked for.
type System struct {
	Packages []string `json:"packages"`
	Source   string   `json:"source"`
}

// debianPackageRe is a Debian package name (Debian policy 5.6.1), optionally with an
// architecture qualifier; not ending in "-", which apt-get reads as "remove".
var debianPackageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*[a-z0-9+](?::[a-z0-9]+)?$`)

// IsDebianPackage reports whether name is a Debian package name apt-get installs.
func IsDebianPackage(name string) bool { return debianPackageRe.MatchString(name) }

// maxPackages bounds an Aptfile: each package is installed in the build sandbox.
const maxPackages = 200

// systemPackages reads `apt` in the configuration, else an Aptfile (one package per line,
// # comments, as Heroku's apt buildpack reads it).
func systemPackages(fsys fs.FS, cfg *Config) (*System, error) {
	if cfg != nil && len(cfg.Apt) > 0 {
		pkgs := slices.Clone(cfg.Apt)
		slices.Sort(pkgs)
		return &System{Packages: slices.Compact(pkgs), Source: cfg.Source("apt")}, nil
	}
	data, err := readOptional(fsys, "Aptfile")
	if err != nil || data == nil {
		return nil, err
	}
	text, err := decodeText("Aptfile", data, false)
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for n, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, p := range strings.Fields(line) {
			switch {
			case strings.Contains(p, "://") || strings.HasSuffix(p, ".deb"):
				return nil, &Error{File: "Aptfile", Line: n + 1, Msg: fmt.Sprintf("%s is a .deb file or URL; pyship installs packages from the base's own Debian archive only", excerpt(p)),
					Hint: "name the Debian package instead, or build on a base image of your own that has it (base in pyship.toml)"}
			case strings.HasPrefix(p, ":repo:"):
				return nil, &Error{File: "Aptfile", Line: n + 1, Msg: "extra apt repositories (:repo:) are not supported",
					Hint: "use packages from the base's Debian release, or a base image of your own"}
			case !debianPackageRe.MatchString(p):
				return nil, &Error{File: "Aptfile", Line: n + 1, Msg: fmt.Sprintf("%s is not a Debian package name", excerpt(p)),
					Hint: `one package per line, as apt-get takes them, like "libpq5"`}
			}
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) > maxPackages {
		return nil, &Error{File: "Aptfile", Msg: fmt.Sprintf("it names %d packages; pyship installs at most %d", len(pkgs), maxPackages)}
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	slices.Sort(pkgs)
	return &System{Packages: slices.Compact(pkgs), Source: "Aptfile"}, nil
}
