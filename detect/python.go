package detect

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SupportedPythons are the Python minor versions pyship builds for, newest first: every
// released CPython with an official python:X.Y-slim base image. Each has a base in the
// test bed.
var SupportedPythons = []string{"3.15", "3.14", "3.13", "3.12", "3.11", "3.10", "3.9"}

// DefaultPythonVersion is used when the repository names no version: the newest release
// that the wheels of popular packages broadly cover. A release a few months old (3.15 in
// late 2026) still lacks wheels for much of what web apps depend on, so it is used only when
// the repository asks for it.
const DefaultPythonVersion = "3.14"

// released are the supported versions' release dates. Wheels for the packages web apps use
// cover a release broadly about six months after it (BroadWheels).
var released = map[string]time.Time{
	"3.9": date(2020, 10, 5), "3.10": date(2021, 10, 4), "3.11": date(2022, 10, 24), "3.12": date(2023, 10, 2),
	"3.13": date(2024, 10, 7), "3.14": date(2025, 10, 7), "3.15": date(2026, 10, 1),
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// BroadWheels returns when the wheels of popular packages came to cover Python minor: six
// months after its release (zero for a version pyship does not know).
func BroadWheels(minor string) time.Time {
	t, ok := released[minor]
	if !ok {
		return time.Time{}
	}
	return t.AddDate(0, 6, 0)
}

// ForTime returns the newest of choices (newest first) whose wheels were broad at t, or the
// oldest of them when none was: the Python a repository of that time was written for. It
// never goes below timeFloor: an older Python is for repositories that name it or whose
// pins need it, not for every old repository.
func ForTime(choices []string, t time.Time) string {
	var floor []string
	for _, m := range choices {
		if !minorLess(m, timeFloor) {
			floor = append(floor, m)
		}
	}
	if len(floor) == 0 {
		floor = choices
	}
	for _, m := range floor {
		if b := BroadWheels(m); !b.IsZero() && !t.Before(b) {
			return m
		}
	}
	if len(floor) == 0 {
		return ""
	}
	return floor[len(floor)-1]
}

// timeFloor is the oldest Python that ForTime picks.
const timeFloor = "3.10"

// endOfLife are supported versions past their end of life, with the month it came.
var endOfLife = map[string]string{"3.9": "October 2025", "3.10": "October 2026"}

// version is a Python version with three components; missing ones are 0.
type version [3]int

func (v version) less(w version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// nextPatch is the smallest version above v: on real Python versions, which have three
// components, "> v" means ">= nextPatch(v)".
func (v version) nextPatch() version { return version{v[0], v[1], v[2] + 1} }

var versionNumRe = regexp.MustCompile(`^\d+(?:\.\d+){0,2}$`)

func parseVersion(s string) (version, int, bool) {
	if !versionNumRe.MatchString(s) {
		return version{}, 0, false
	}
	var v version
	parts := strings.Split(s, ".")
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return version{}, 0, false
		}
		v[i] = n
	}
	return v, len(parts), true
}

// interval is the half-open range [lo, hi) of versions.
type interval struct{ lo, hi version }

var anyVersion = interval{lo: version{0, 0, 0}, hi: version{1 << 30, 0, 0}}

func (r interval) empty() bool { return !r.lo.less(r.hi) }

func (r interval) and(o interval) interval {
	if r.lo.less(o.lo) {
		r.lo = o.lo
	}
	if o.hi.less(r.hi) {
		r.hi = o.hi
	}
	return r
}

// Specifier is a Python version requirement: PEP 440 clauses (">=3.10,<3.13", "~=3.11",
// "==3.12.*"), Poetry's caret and tilde ("^3.11", "~3.11"), or a bare version.
type Specifier struct {
	text     string
	allowed  interval
	excluded map[[2]int]bool // minor versions removed by "!=X.Y.*"
}

// ParseSpecifier parses a version requirement.
func ParseSpecifier(text string) (Specifier, error) {
	s := Specifier{text: text, allowed: anyVersion, excluded: map[[2]int]bool{}}
	clauses := strings.Split(text, ",")
	if strings.Contains(text, "||") || strings.Contains(text, " or ") {
		return s, fmt.Errorf("%s: alternatives (||) are not supported; give one range", excerpt(text))
	}
	for _, clause := range clauses {
		clause = strings.ReplaceAll(strings.TrimSpace(clause), " ", "")
		if clause == "" || clause == "*" {
			continue
		}
		if err := s.add(clause); err != nil {
			return s, fmt.Errorf("%s: %w", excerpt(text), err)
		}
	}
	return s, nil
}

var opRe = regexp.MustCompile(`^(~=|===|==|!=|<=|>=|<|>|\^|~)?(.*)$`)

func (s *Specifier) add(clause string) error {
	m := opRe.FindStringSubmatch(clause)
	if m == nil {
		return fmt.Errorf("%s is not a version clause", excerpt(clause))
	}
	op, rest := m[1], m[2]
	wildcard := strings.HasSuffix(rest, ".*")
	rest = strings.TrimSuffix(rest, ".*")
	v, n, ok := parseVersion(rest)
	if !ok {
		return fmt.Errorf("%s is not a version", excerpt(clause))
	}
	if wildcard && op != "==" && op != "!=" && op != "" {
		return fmt.Errorf("%s: a wildcard only goes with == or !=", excerpt(clause))
	}
	var r interval
	switch op {
	case ">=":
		r = interval{v, anyVersion.hi}
	case ">":
		r = interval{v.nextPatch(), anyVersion.hi}
	case "<=":
		r = interval{anyVersion.lo, v.nextPatch()}
	case "<":
		r = interval{anyVersion.lo, v}
	case "==", "===", "":
		if wildcard || (op == "" && n < 3) {
			// "==3.11.*", and Poetry's bare "3.11", cover every release of the prefix.
			r = interval{v, bump(v, n)}
		} else {
			r = interval{v, v.nextPatch()}
		}
	case "!=":
		if wildcard && n == 2 {
			s.excluded[[2]int{v[0], v[1]}] = true
		}
		return nil
	case "~=":
		if n < 2 {
			return fmt.Errorf("%s: ~= needs at least two components", excerpt(clause))
		}
		r = interval{v, bump(v, n-1)}
	case "^":
		// Poetry: up to the next change of the first non-zero component.
		r = interval{v, bump(v, 1)}
		if v[0] == 0 {
			r.hi = bump(v, 2)
		}
	case "~":
		if n == 1 {
			r = interval{v, bump(v, 1)}
		} else {
			r = interval{v, bump(v, 2)}
		}
	}
	s.allowed = s.allowed.and(r)
	return nil
}

// bump increments the n-th component (1-based) of v and zeroes the rest.
func bump(v version, n int) version {
	var out version
	copy(out[:n], v[:n])
	out[n-1]++
	return out
}

// AllowsMinor reports whether some release of minor version "X.Y" satisfies the specifier.
func (s Specifier) AllowsMinor(minor string) bool {
	v, n, ok := parseVersion(minor)
	if !ok || n != 2 || s.excluded[[2]int{v[0], v[1]}] {
		return false
	}
	return !s.allowed.and(interval{v, bump(v, 2)}).empty()
}

// AllowsVersion reports whether a release version ("3.1.2") satisfies the specifier. A
// version pyship cannot compare (pre-releases, epochs) is allowed.
func (s Specifier) AllowsVersion(v string) bool {
	ver, _, ok := parseVersion(v)
	if !ok {
		return true
	}
	return !s.allowed.and(interval{ver, ver.nextPatch()}).empty()
}

// Newest returns the newest supported minor version the specifier allows.
func (s Specifier) Newest() (string, bool) {
	if a := s.Allowed(); len(a) > 0 {
		return a[0], true
	}
	return "", false
}

// Allowed returns the supported minor versions the specifier allows, newest first.
func (s Specifier) Allowed() []string {
	var out []string
	for _, m := range SupportedPythons {
		if s.AllowsMinor(m) {
			out = append(out, m)
		}
	}
	return out
}

// allowsBelow reports whether the specifier allows some Python 3 release older than minor.
func (s Specifier) allowsBelow(minor string) bool {
	v, _, ok := parseVersion(minor)
	if !ok {
		return false
	}
	return !s.allowed.and(interval{lo: version{3, 0, 0}, hi: v}).empty()
}

// Preferred returns the version pyship picks among allowed (newest first): the newest one
// not newer than DefaultPythonVersion, or else the oldest, since a range like ">=3.10" is
// a floor, not a wish for a release that few wheels cover yet.
func Preferred(allowed []string) string {
	for _, m := range allowed {
		if !minorLess(DefaultPythonVersion, m) {
			return m
		}
	}
	if len(allowed) == 0 {
		return ""
	}
	return allowed[len(allowed)-1]
}

// minorLess reports whether minor version a ("3.9") comes before b ("3.10").
func minorLess(a, b string) bool {
	va, _, _ := parseVersion(a)
	vb, _, _ := parseVersion(b)
	return va.less(vb)
}

// OldestMaintained returns the oldest supported version still maintained upstream.
func OldestMaintained() string {
	for i := len(SupportedPythons) - 1; i >= 0; i-- {
		if endOfLife[SupportedPythons[i]] == "" {
			return SupportedPythons[i]
		}
	}
	return SupportedPythons[0]
}

// EndOfLife returns the month a supported version reached its end of life, or "".
func EndOfLife(minor string) string { return endOfLife[minor] }

func (s Specifier) String() string { return s.text }

// pythonMinor turns a version as written in .python-version or runtime.txt ("3.12",
// "3.12.4", "python-3.12.4", "3.13t") into its minor version.
var minorRe = regexp.MustCompile(`^(?:python-?|cpython-?)?(\d+)\.(\d+)(?:\.\d+)?(?:[a-z]+\d*)?$`)

func pythonMinor(s string) (string, bool) {
	m := minorRe.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return "", false
	}
	return m[1] + "." + m[2], true
}

// supported reports whether minor has a base image.
func supported(minor string) bool {
	for _, m := range SupportedPythons {
		if m == minor {
			return true
		}
	}
	return false
}
