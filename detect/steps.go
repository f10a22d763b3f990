package detect

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// djangoProject is what the start command learnt about a Django project.
type djangoProject struct {
	// settings is the settings module, like "mysite.settings".
	settings string
}

var staticRootRe = regexp.MustCompile(`(?m)^STATIC_ROOT\s*=\s*(.+)$`)

// buildSteps decides the framework build steps: Django's collectstatic when the settings
// set STATIC_ROOT, unless the configuration says otherwise.
func buildSteps(fsys fs.FS, cfg *Config, res *Result) error {
	if res.django == nil {
		return nil
	}
	var forced *bool
	if cfg != nil {
		forced = cfg.Django.Collectstatic
	}
	collect := BuildStep{
		Name:    "collectstatic",
		Command: []string{"python", "manage.py", "collectstatic", "--noinput"},
	}
	switch {
	case forced != nil && !*forced:
		return nil
	case forced != nil:
		collect.Source, collect.Reason = cfg.Source("django.collectstatic"), "django.collectstatic = true in "+cfg.File
	default:
		file, line, value, err := findStaticRoot(fsys, res.django.settings)
		if err != nil || file == "" {
			return err
		}
		collect.Source = fmt.Sprintf("%s:%d", file, line)
		collect.Reason = "the settings set STATIC_ROOT = " + value
		if strings.HasPrefix(strings.Trim(value, `"'`), "/") {
			res.warnf("%s: STATIC_ROOT is an absolute path; pyship keeps only what collectstatic writes inside the project, so make it relative to BASE_DIR", collect.Source)
		}
	}
	res.BuildSteps = append(res.BuildSteps, collect)
	return nil
}

// findStaticRoot looks for STATIC_ROOT in the settings module (a file, or every file of a
// settings package).
func findStaticRoot(fsys fs.FS, settings string) (string, int, string, error) {
	base := strings.ReplaceAll(settings, ".", "/")
	var files []string
	if exists(fsys, base+".py") {
		files = append(files, base+".py")
	}
	// A module of a settings package usually imports the package's base module.
	for dir := base; dir != "." && dir != ""; dir = path.Dir(dir) {
		matches, _ := fs.Glob(fsys, dir+"/*.py")
		files = append(files, matches...)
		if exists(fsys, dir+"/__init__.py") || len(matches) > 0 {
			break
		}
	}
	for _, f := range files {
		data, err := readFile(fsys, f)
		if err != nil {
			return "", 0, "", readError(f, err)
		}
		if m := staticRootRe.FindSubmatchIndex(data); m != nil {
			return f, lineOf(string(data), m[0]), strings.TrimSpace(string(data[m[2]:m[3]])), nil
		}
	}
	return "", 0, "", nil
}
