package detect

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// project is what pyproject.toml, Pipfile and setup.py/setup.cfg say about the project.
type project struct {
	// pyproject is the raw pyproject.toml, nil when there is none.
	pyproject []byte
	// PEP 621 [project] table, or Poetry's [tool.poetry].
	name           string
	pep621         bool
	poetry         bool
	requiresPython string
	pythonSource   string
	dependencies   []string // normalised names
	// requirements are the main dependencies with their version ranges, to check locks.
	requirements []declared
	scripts      map[string]string
	buildBackend string
	// packageMode is false for a Poetry project that is not a package (package-mode = false).
	packageMode bool
	// setup.py or setup.cfg exists.
	setuptools bool
	// noPackage, when set, says why the build backend would find nothing to put in the
	// project's own wheel: an app kept as a project only for its dependencies.
	noPackage string
	// Pipfile.
	pipfile *pipfile
}

// declared is a dependency as pyproject.toml declares it.
type declared struct {
	name string // normalised
	spec string // version range, may be empty
}

type pipfile struct {
	python       string
	pythonSource string
	packages     []string
}

type pyprojectDoc struct {
	Project *struct {
		Name           string            `toml:"name"`
		RequiresPython string            `toml:"requires-python"`
		Dependencies   []string          `toml:"dependencies"`
		Scripts        map[string]string `toml:"scripts"`
	} `toml:"project"`
	BuildSystem struct {
		Backend string `toml:"build-backend"`
	} `toml:"build-system"`
	Tool struct {
		Poetry *struct {
			Name         string         `toml:"name"`
			PackageMode  *bool          `toml:"package-mode"`
			Dependencies map[string]any `toml:"dependencies"`
			Scripts      map[string]any `toml:"scripts"`
		} `toml:"poetry"`
	} `toml:"tool"`
}

// pep508Re splits a PEP 508 requirement into its name and its version range (extras,
// URLs and markers dropped).
var pep508Re = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*\(?([^;@)]*)`)

// requirementLine finds the line of pyproject.toml that declares name, or 0.
func (p *project) requirementLine(name string) int {
	if name == "" || p.pyproject == nil {
		return 0
	}
	for i, line := range strings.Split(string(p.pyproject), "\n") {
		m := pep508Re.FindStringSubmatch(strings.Trim(strings.TrimSpace(line), `"',`))
		if m != nil && NormalizeName(m[1]) == name {
			return i + 1
		}
	}
	return 0
}

// readProject reads the project metadata files that exist.
func readProject(fsys fs.FS) (*project, error) {
	p := &project{scripts: map[string]string{}}
	data, err := readOptional(fsys, "pyproject.toml")
	if err != nil {
		return nil, err
	}
	if data != nil {
		p.pyproject = data
		var doc pyprojectDoc
		if _, err := decodeTOML("pyproject.toml", data, &doc); err != nil {
			return nil, err
		}
		p.buildBackend = doc.BuildSystem.Backend
		if pr := doc.Project; pr != nil {
			p.pep621 = true
			p.name = pr.Name
			if pr.RequiresPython != "" {
				p.requiresPython = pr.RequiresPython
				p.pythonSource = "pyproject.toml:" + fmt.Sprint(keyLine(string(data), toml.Key{"project", "requires-python"}))
			}
			for _, d := range pr.Dependencies {
				if m := pep508Re.FindStringSubmatch(d); m != nil {
					name := NormalizeName(m[1])
					p.dependencies = append(p.dependencies, name)
					p.requirements = append(p.requirements, declared{name: name, spec: strings.TrimSpace(m[2])})
				}
			}
			for k, v := range pr.Scripts {
				p.scripts[k] = v
			}
		}
		if po := doc.Tool.Poetry; po != nil {
			p.poetry = true
			p.packageMode = po.PackageMode == nil || *po.PackageMode
			if p.name == "" {
				p.name = po.Name
			}
			for name, spec := range po.Dependencies {
				if NormalizeName(name) == "python" {
					if s, ok := spec.(string); ok && p.requiresPython == "" {
						p.requiresPython = s
						p.pythonSource = "pyproject.toml:" + fmt.Sprint(keyLine(string(data), toml.Key{"tool", "poetry", "dependencies", "python"}))
					}
					continue
				}
				name = NormalizeName(name)
				p.dependencies = append(p.dependencies, name)
				if !p.pep621 {
					d := declared{name: name}
					switch spec := spec.(type) {
					case string:
						d.spec = spec
					case map[string]any:
						if optional, _ := spec["optional"].(bool); optional {
							continue
						}
						d.spec, _ = spec["version"].(string)
					}
					if d.spec == "*" {
						d.spec = ""
					}
					p.requirements = append(p.requirements, d)
				}
			}
			for k, v := range po.Scripts {
				if s, ok := v.(string); ok {
					p.scripts[k] = s
				}
			}
		}
	}
	p.setuptools = exists(fsys, "setup.py") || exists(fsys, "setup.cfg")
	p.noPackage = emptyWheel(fsys, p)
	if p.setuptools && p.requiresPython == "" {
		if p.requiresPython, p.pythonSource, err = setupPythonRequires(fsys); err != nil {
			return nil, err
		}
	}

	data, err = readOptional(fsys, "Pipfile")
	if err != nil {
		return nil, err
	}
	if data != nil {
		pf, err := parsePipfile(data)
		if err != nil {
			return nil, err
		}
		p.pipfile = pf
	}
	sort.Strings(p.dependencies)
	return p, nil
}

// installable reports whether the repository is itself a Python project pip can install.
func (p *project) installable() bool {
	if p.poetry && !p.packageMode {
		return false
	}
	return p.pep621 || p.setuptools || (p.poetry && strings.HasPrefix(p.buildBackend, "poetry"))
}

// pythonRequiresRes find python_requires in setup.cfg (a whole line) and setup.py (a
// string literal).
var pythonRequiresRes = map[string]*regexp.Regexp{
	"setup.cfg": regexp.MustCompile(`(?m)^\s*python_requires\s*=\s*(.+?)\s*$`),
	"setup.py":  regexp.MustCompile(`python_requires\s*=\s*["']([^"']+)["']`),
}

// setupPythonRequires reads python_requires from setup.cfg or setup.py, as text.
func setupPythonRequires(fsys fs.FS) (string, string, error) {
	for _, name := range []string{"setup.cfg", "setup.py"} {
		data, err := readOptional(fsys, name)
		if err != nil {
			return "", "", err
		}
		if loc := pythonRequiresRes[name].FindSubmatchIndex(data); loc != nil {
			return strings.TrimSpace(string(data[loc[2]:loc[3]])), fmt.Sprintf("%s:%d", name, lineOf(string(data), loc[0])), nil
		}
	}
	return "", "", nil
}

func parsePipfile(data []byte) (*pipfile, error) {
	var doc struct {
		Packages map[string]any `toml:"packages"`
		Requires struct {
			PythonVersion     string `toml:"python_version"`
			PythonFullVersion string `toml:"python_full_version"`
		} `toml:"requires"`
	}
	if _, err := decodeTOML("Pipfile", data, &doc); err != nil {
		return nil, err
	}
	pf := &pipfile{}
	switch {
	case doc.Requires.PythonFullVersion != "":
		pf.python = doc.Requires.PythonFullVersion
		pf.pythonSource = fmt.Sprintf("Pipfile:%d", keyLine(string(data), toml.Key{"requires", "python_full_version"}))
	case doc.Requires.PythonVersion != "":
		pf.python = doc.Requires.PythonVersion
		pf.pythonSource = fmt.Sprintf("Pipfile:%d", keyLine(string(data), toml.Key{"requires", "python_version"}))
	}
	for name := range doc.Packages {
		pf.packages = append(pf.packages, NormalizeName(name))
	}
	sort.Strings(pf.packages)
	return pf, nil
}

// declaredDependencies are a pyproject.toml's dependencies as written: [project]'s list
// (nil when the table has none), whether it marks them dynamic, and Poetry's table.
type declaredDependencies struct {
	pep621  []string
	dynamic bool
	poetry  map[string]any
}

// declared decodes the project's pyproject.toml for its dependencies.
func (proj *project) declared() (declaredDependencies, error) {
	var doc struct {
		Project *struct {
			Dependencies []string `toml:"dependencies"`
			Dynamic      []string `toml:"dynamic"`
		} `toml:"project"`
		Tool struct {
			Poetry *struct {
				Dependencies map[string]any `toml:"dependencies"`
			} `toml:"poetry"`
		} `toml:"tool"`
	}
	if _, err := decodeTOML("pyproject.toml", proj.pyproject, &doc); err != nil {
		return declaredDependencies{}, err
	}
	var d declaredDependencies
	if p := doc.Project; p != nil {
		d.pep621 = p.Dependencies
		d.dynamic = slices.Contains(p.Dynamic, "dependencies")
	}
	if p := doc.Tool.Poetry; p != nil {
		d.poetry = p.Dependencies
	}
	return d, nil
}

// wheelBackends are the build backends that, unless configured otherwise, put in a
// project's wheel the package or module named after the project (at the top or under src/)
// and fail when there is none; the text that configures them otherwise.
var wheelBackends = map[string][]string{
	"poetry.core.masonry.api": {"packages", "include"},
	// poetry's own backend, as projects of Poetry 1.0 and before name it
	"poetry.masonry.api": {"packages", "include"},
	"hatchling.build":    {"[tool.hatch.build"},
	"flit_core.buildapi": {"[tool.flit.module"},
}

// emptyWheel says why the project's build backend would find nothing to build (the app is
// app.py beside pyproject.toml, say), or "".
func emptyWheel(fsys fs.FS, p *project) string {
	configured, ok := wheelBackends[p.buildBackend]
	if !ok || p.name == "" || p.setuptools {
		return ""
	}
	text := string(p.pyproject)
	for _, c := range configured {
		if strings.Contains(text, c) {
			return ""
		}
	}
	mod := strings.ReplaceAll(NormalizeName(p.name), "-", "_")
	for _, c := range []string{mod + "/__init__.py", "src/" + mod + "/__init__.py", mod + ".py", "src/" + mod + ".py"} {
		if exists(fsys, c) {
			return ""
		}
	}
	return fmt.Sprintf("%s (%s) builds a package named %s, and the repository has no %s/, src/%s/ or %s.py", p.buildBackend, "pyproject.toml", mod, mod, mod, mod)
}
