package detect

import (
	"fmt"
	"regexp"
	"strings"
)

// Pin is a requirement pinned to one version, by a lock file or by "==" in a requirements
// file: what the Python version must suit.
type Pin struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Marker is the environment marker the requirement carries, if any.
	Marker string `json:"marker,omitempty"`
	// Source is where it is pinned, like "requirements.txt:3".
	Source string `json:"source"`
}

// pinRe matches an exact pin: name, optional extras, "==" and a plain version, optional
// marker.
var pinRe = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([0-9][A-Za-z0-9.+!_-]*)\s*(?:;(.*))?$`)

// requirementPin returns the pin a requirement line makes, if it makes one.
func requirementPin(file string, r Requirement) (Pin, bool) {
	if r.Kind != "name" {
		return Pin{}, false
	}
	m := pinRe.FindStringSubmatch(strings.TrimSpace(r.Text))
	if m == nil {
		return Pin{}, false
	}
	return Pin{Name: NormalizeName(m[1]), Version: m[2], Marker: strings.TrimSpace(m[3]), Source: fmt.Sprintf("%s:%d", file, r.Line)}, true
}

// lockPins are the packages a lock installs from an index.
func lockPins(l *Lock) []Pin {
	var pins []Pin
	for _, p := range l.Packages {
		if p.URL == "" {
			pins = append(pins, Pin{Name: NormalizeName(p.Name), Version: p.Version, Marker: p.Marker, Source: l.File})
		}
	}
	return pins
}

// MarkerApplies evaluates an environment marker on CPython minor version python on
// linux/amd64. ok is false when the marker cannot be read or needs what pyship does not
// know (an extra's value, the patch release).
func MarkerApplies(text, python string) (applies, ok bool) {
	if strings.TrimSpace(text) == "" {
		return true, true
	}
	m, err := parseMarker(text)
	if err != nil {
		return false, false
	}
	// python_full_version is left unknown: the image's patch release is not known here.
	env := map[string]string{
		"python_version":                 python,
		"sys_platform":                   "linux",
		"platform_system":                "Linux",
		"os_name":                        "posix",
		"platform_machine":               "x86_64",
		"implementation_name":            "cpython",
		"platform_python_implementation": "CPython",
	}
	return evalMarker(m, env)
}

func evalMarker(m marker, env map[string]string) (bool, bool) {
	switch m := m.(type) {
	case markerConst:
		return bool(m), true
	case markerAnd:
		l, ok1 := evalMarker(m.l, env)
		r, ok2 := evalMarker(m.r, env)
		if ok1 && !l || ok2 && !r {
			return false, true
		}
		return l && r, ok1 && ok2
	case markerOr:
		l, ok1 := evalMarker(m.l, env)
		r, ok2 := evalMarker(m.r, env)
		if ok1 && l || ok2 && r {
			return true, true
		}
		return false, ok1 && ok2
	case markerCmp:
		left, lv, ok1 := markerValue(m.left, env)
		right, rv, ok2 := markerValue(m.right, env)
		if !ok1 || !ok2 {
			return false, false
		}
		switch m.op {
		case "in":
			return strings.Contains(right, left), true
		case "not in":
			return !strings.Contains(right, left), true
		}
		if lv || rv {
			// A version on either side: compare as versions where both read as ones.
			a, _, okA := parseVersion(left)
			b, _, okB := parseVersion(right)
			if okA && okB {
				switch m.op {
				case "==", "===":
					return a == b, true
				case "!=":
					return a != b, true
				case "<":
					return a.less(b), true
				case "<=":
					return !b.less(a), true
				case ">":
					return b.less(a), true
				case ">=":
					return !a.less(b), true
				}
			}
		}
		switch m.op {
		case "==", "===":
			return left == right, true
		case "!=":
			return left != right, true
		}
		return false, false
	}
	return false, false
}

// markerValue resolves one side of a comparison: a quoted string, or a variable from env.
// version says whether it is a version variable.
func markerValue(s string, env map[string]string) (value string, version, ok bool) {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') {
		return s[1 : len(s)-1], false, true
	}
	v, ok := env[s]
	return v, strings.HasSuffix(s, "_version"), ok
}

// projectPins are the exact pins among pyproject.toml's [project] dependencies.
func projectPins(proj *project) []Pin {
	if !proj.pep621 {
		return nil
	}
	var pins []Pin
	for _, d := range proj.requirements {
		m := pinRe.FindStringSubmatch(d.name + " " + d.spec)
		if m == nil {
			continue
		}
		pins = append(pins, Pin{Name: d.name, Version: m[2], Marker: strings.TrimSpace(m[3]), Source: fmt.Sprintf("pyproject.toml:%d", proj.requirementLine(d.name))})
	}
	return pins
}
