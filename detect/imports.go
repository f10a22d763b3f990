package detect

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Inferred is a package pyship installs because the code imports it and the repository
// has no dependency file to say so.
type Inferred struct {
	// Name is the distribution, like "Pillow".
	Name string `json:"name"`
	// Import is the module the code imports, like "PIL", and Source where it first does.
	Import string `json:"import"`
	Source string `json:"source"`
}

// importDists are the distributions of well-known import names: only these are inferred.
// An import name is not a package name, and a name anyone may upload to the index is not
// installed on a guess.
var importDists = map[string]string{
	"aiofiles": "aiofiles", "aiohttp": "aiohttp", "aiohttp_jinja2": "aiohttp-jinja2", "altair": "altair",
	"bcrypt": "bcrypt", "bokeh": "bokeh", "boto3": "boto3", "bottle": "bottle", "bs4": "beautifulsoup4",
	"celery": "celery", "click": "click", "corsheaders": "django-cors-headers", "crispy_forms": "django-crispy-forms",
	"cv2": "opencv-python-headless", "dash": "dash", "dateutil": "python-dateutil", "decouple": "python-decouple",
	"django": "Django", "dotenv": "python-dotenv", "environ": "django-environ", "falcon": "falcon",
	"fastapi": "fastapi", "flask": "Flask", "flask_cors": "Flask-Cors", "flask_login": "Flask-Login",
	"flask_migrate": "Flask-Migrate", "flask_socketio": "Flask-SocketIO", "flask_sqlalchemy": "Flask-SQLAlchemy",
	"flask_wtf": "Flask-WTF", "gradio": "gradio", "gunicorn": "gunicorn", "httpx": "httpx",
	"itsdangerous": "itsdangerous", "jinja2": "Jinja2", "jwt": "PyJWT", "litestar": "litestar", "lxml": "lxml",
	"markdown": "Markdown", "markupsafe": "MarkupSafe", "marshmallow": "marshmallow", "matplotlib": "matplotlib",
	"multipart": "python-multipart", "nicegui": "nicegui", "numpy": "numpy", "openpyxl": "openpyxl",
	"pandas": "pandas", "panel": "panel", "peewee": "peewee", "PIL": "Pillow", "plotly": "plotly",
	"psycopg2": "psycopg2-binary", "pydantic": "pydantic", "pymongo": "pymongo", "pymysql": "PyMySQL",
	"pyramid": "pyramid", "quart": "quart", "redis": "redis", "requests": "requests",
	"rest_framework": "djangorestframework", "sanic": "sanic", "scipy": "scipy", "seaborn": "seaborn",
	"sklearn": "scikit-learn", "sqlalchemy": "SQLAlchemy", "starlette": "starlette", "streamlit": "streamlit",
	"tornado": "tornado", "uvicorn": "uvicorn", "waitress": "waitress", "werkzeug": "Werkzeug",
	"whitenoise": "whitenoise", "wtforms": "WTForms", "yaml": "PyYAML",
}

// maxImportFiles bounds the Python files read to infer imports, maxImportEntries the
// directory entries looked at to find them and the repository's own module names.
const (
	maxImportFiles   = 500
	maxImportEntries = 20000
)

// inferImports finds the well-known packages the repository's Python files import, for a
// repository with no dependency file. Imports of the standard library and of the
// repository's own modules are not packages; other unknown ones are named in a warning.
func inferImports(fsys fs.FS, res *Result) ([]Inferred, error) {
	var files []string
	local := map[string]bool{}
	entries := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entries++; entries > maxImportEntries {
			return fs.SkipAll
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(name, ".") || notPackages[name] || name == "site-packages") {
				return fs.SkipDir
			}
			local[name] = true
			return nil
		}
		if strings.HasSuffix(name, ".py") && d.Type().IsRegular() {
			local[strings.TrimSuffix(name, ".py")] = true
			if len(files) < maxImportFiles {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, readError(".", err)
	}
	seen := map[string]bool{}
	var out []Inferred
	var unknown []string
	for _, f := range files {
		data, err := readSource(fsys, f)
		if err != nil {
			return nil, readError(f, err)
		}
		src := string(data)
		for _, m := range importRe.FindAllStringSubmatchIndex(src, 500) {
			mod := ""
			if m[2] >= 0 {
				mod = src[m[2]:m[3]]
			} else {
				mod = src[m[4]:m[5]]
			}
			if seen[mod] || local[mod] || StdlibModules[mod] || mod == "__future__" {
				continue
			}
			seen[mod] = true
			where := fmt.Sprintf("%s:%d", f, lineOf(src, m[0]))
			if dist, ok := importDists[mod]; ok {
				out = append(out, Inferred{Name: dist, Import: mod, Source: where})
			} else {
				unknown = append(unknown, mod+" ("+where+")")
			}
		}
	}
	slices.SortFunc(out, func(a, b Inferred) int { return strings.Compare(NormalizeName(a.Name), NormalizeName(b.Name)) })
	if len(out) > 0 {
		var names []string
		for _, i := range out {
			names = append(names, fmt.Sprintf("%s (import %s, %s)", i.Name, i.Import, i.Source))
		}
		res.warnf("no dependency file (requirements.txt, pyproject.toml, a lock): pyship installs what the code imports: %s; write them in a requirements.txt to say which versions", strings.Join(names, ", "))
	}
	if len(unknown) > 0 {
		res.warnf("the code imports modules pyship cannot tell the package of, so they are not installed: %s; list their packages in a requirements.txt", strings.Join(unknown, ", "))
	}
	return out, nil
}

// inferredNames are the normalised names of inferred packages.
func inferredNames(in []Inferred) []string {
	var out []string
	for _, i := range in {
		out = append(out, NormalizeName(i.Name))
	}
	return out
}
