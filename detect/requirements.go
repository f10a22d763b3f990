package detect

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Requirement is one requirement line of a requirements file.
type Requirement struct {
	// Name is the normalised project name (PEP 503), empty for a bare path or URL.
	Name string `json:"name,omitempty"`
	// Text is the requirement as written, without options, hashes or comments.
	Text string `json:"text"`
	// Kind is "name" (a PEP 508 requirement), "url" (name @ URL or a plain URL), "path"
	// (a local directory or archive), "vcs" (git+ and friends) or "editable".
	Kind   string   `json:"kind"`
	Hashes []string `json:"hashes,omitempty"`
	Line   int      `json:"line"`
}

// RequirementsFile is a parsed requirements file.
type RequirementsFile struct {
	Path string `json:"path"`
	// Includes are the files named by -r (requirements) and -c (constraints), in order, as
	// written (relative to this file's directory).
	Includes     []Include     `json:"includes,omitempty"`
	Requirements []Requirement `json:"requirements,omitempty"`
	// IndexOptions are --index-url, --extra-index-url, --find-links and --trusted-host
	// lines, which pip reads from the file itself.
	IndexOptions []string `json:"index_options,omitempty"`
}

// Include is a -r or -c line.
type Include struct {
	Path       string `json:"path"`
	Constraint bool   `json:"constraint,omitempty"`
	Line       int    `json:"line"`
}

var (
	// reqNameRe matches a PEP 508 name, extras and what follows.
	reqNameRe = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$`)
	// reqRestRe matches what may follow a name: version clauses, "@ url", markers.
	reqRestRe = regexp.MustCompile(`^(?:\(?\s*(?:(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)+\)?)?\s*(?:@\s*\S+\s*)?(?:;.*)?$`)
	vcsRe     = regexp.MustCompile(`^(?:git|hg|svn|bzr)\+`)
	urlRe     = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://`)
	eggRe     = regexp.MustCompile(`[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)`)
	nameSepRe = regexp.MustCompile(`[-_.]+`)
)

// NormalizeName normalises a project name as PEP 503 does: lowercase, runs of -_. as -.
func NormalizeName(name string) string {
	return nameSepRe.ReplaceAllString(strings.ToLower(name), "-")
}

// pip options that take a value, and those that do not, as they may appear in a file.
var (
	reqValueOptions = map[string]bool{
		"-i": true, "--index-url": true, "--extra-index-url": true, "-f": true, "--find-links": true,
		"--trusted-host": true, "--no-binary": true, "--only-binary": true, "--use-feature": true,
		"--config-settings": true, "--global-option": true, "--hash": true,
	}
	reqFlagOptions = map[string]bool{
		"--no-index": true, "--pre": true, "--prefer-binary": true, "--require-hashes": true,
	}
	indexOptions = map[string]bool{
		"-i": true, "--index-url": true, "--extra-index-url": true, "-f": true, "--find-links": true,
		"--trusted-host": true, "--no-index": true,
	}
)

// ParseRequirements parses a pip requirements file. A line it cannot read is an *Error
// with the file and line.
func ParseRequirements(file string, data []byte) (*RequirementsFile, error) {
	rf := &RequirementsFile{Path: file}
	bad := func(line int, format string, args ...any) error {
		return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...),
			Hint: "see https://pip.pypa.io/en/stable/reference/requirements-file-format/"}
	}
	text, err := decodeText(file, data, true)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := lines[i]
		// A backslash at the end joins the next line (into one buffer: joining a string
		// at every line would cost the square of the lines joined).
		if strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			var joined strings.Builder
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				joined.WriteString(strings.TrimSuffix(line, `\`))
				joined.WriteString(" ")
				i++
				line = lines[i]
			}
			joined.WriteString(line)
			line = joined.String()
		}
		line = stripComment(line)
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if strings.HasPrefix(fields[0], "-") {
			if err := rf.option(fields, start, bad); err != nil {
				return nil, err
			}
			continue
		}
		req, err := parseRequirementLine(fields, start, bad)
		if err != nil {
			return nil, err
		}
		if err := rf.checkLocal(req); err != nil {
			return nil, err
		}
		rf.Requirements = append(rf.Requirements, req)
	}
	return rf, nil
}

// stripComment removes a comment: "#" at the start or after whitespace (a "#" inside a URL
// fragment stays).
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	return strings.TrimSpace(line)
}

func (rf *RequirementsFile) option(fields []string, line int, bad func(int, string, ...any) error) error {
	opt, value, hasValue := strings.Cut(fields[0], "=")
	rest := fields[1:]
	// Short options may stick to their value: -rbase.txt.
	if !hasValue && len(opt) > 2 && opt[1] != '-' {
		opt, value, hasValue = opt[:2], opt[2:], true
	}
	takeValue := func() (string, error) {
		if hasValue {
			return value, nil
		}
		if len(rest) == 0 {
			return "", bad(line, "%s needs a value", excerpt(opt))
		}
		v := rest[0]
		rest = rest[1:]
		return v, nil
	}
	switch {
	case opt == "-r" || opt == "--requirement" || opt == "-c" || opt == "--constraint":
		v, err := takeValue()
		if err != nil {
			return err
		}
		rf.Includes = append(rf.Includes, Include{Path: v, Constraint: opt == "-c" || opt == "--constraint", Line: line})
	case opt == "-e" || opt == "--editable":
		v, err := takeValue()
		if err != nil {
			return err
		}
		req, err := parseRequirementLine([]string{v}, line, bad)
		if err != nil {
			return err
		}
		if err := rf.checkLocal(req); err != nil {
			return err
		}
		req.Kind = "editable"
		rf.Requirements = append(rf.Requirements, req)
	case reqValueOptions[opt]:
		v, err := takeValue()
		if err != nil {
			return err
		}
		if indexOptions[opt] {
			rf.IndexOptions = append(rf.IndexOptions, opt+" "+v)
		}
	case reqFlagOptions[opt]:
		if hasValue {
			return bad(line, "%s takes no value", excerpt(opt))
		}
		if indexOptions[opt] {
			rf.IndexOptions = append(rf.IndexOptions, opt)
		}
	default:
		return bad(line, "unknown option %s", excerpt(fields[0]))
	}
	if len(rest) > 0 {
		return bad(line, "unexpected %s after %s", excerpt(strings.Join(rest, " ")), excerpt(opt))
	}
	return nil
}

// parseRequirementLine reads a requirement and its per-requirement options (--hash).
func parseRequirementLine(fields []string, line int, bad func(int, string, ...any) error) (Requirement, error) {
	req := Requirement{Line: line}
	var words []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.HasPrefix(f, "--hash="):
			req.Hashes = append(req.Hashes, strings.TrimPrefix(f, "--hash="))
		case f == "--hash" && i+1 < len(fields):
			i++
			req.Hashes = append(req.Hashes, fields[i])
		case strings.HasPrefix(f, "--config-settings") || strings.HasPrefix(f, "--global-option"):
			if !strings.Contains(f, "=") {
				i++
			}
		case strings.HasPrefix(f, "-"):
			return req, bad(line, "unknown option %s after a requirement", excerpt(f))
		default:
			words = append(words, f)
		}
	}
	for _, h := range req.Hashes {
		if algo, digest, ok := strings.Cut(h, ":"); !ok || algo == "" || digest == "" {
			return req, bad(line, "--hash=%s is not ALGORITHM:DIGEST", excerpt(h))
		}
	}
	req.Text = strings.Join(words, " ")
	switch t := req.Text; {
	case t == "":
		return req, bad(line, "a --hash without a requirement")
	case vcsRe.MatchString(t):
		req.Kind = "vcs"
		if m := eggRe.FindStringSubmatch(t); m != nil {
			req.Name = NormalizeName(m[1])
		}
	case urlRe.MatchString(t):
		req.Kind = "url"
		if m := eggRe.FindStringSubmatch(t); m != nil {
			req.Name = NormalizeName(m[1])
		}
	case t == "." || strings.HasPrefix(t, "./") || strings.HasPrefix(t, "../") || strings.HasPrefix(t, "/") ||
		strings.HasSuffix(t, ".whl") || strings.HasSuffix(t, ".tar.gz") || strings.HasSuffix(t, ".zip"):
		req.Kind = "path"
	default:
		m := reqNameRe.FindStringSubmatch(t)
		if m == nil || !reqRestRe.MatchString(m[3]) {
			return req, bad(line, "%s is not a valid requirement (PEP 508: name[extras] specifiers ; markers)", excerpt(t))
		}
		req.Name = NormalizeName(m[1])
		req.Kind = "name"
		if strings.HasPrefix(strings.TrimSpace(m[3]), "@") {
			req.Kind = "url"
		}
	}
	return req, nil
}

// fileURLRe finds a file: URL, alone or after "name @".
var fileURLRe = regexp.MustCompile(`(?i)^(?:[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?\s*@\s*)?file:`)

// outsideHint says what to do with a package that lives outside the repository.
const outsideHint = "pyship builds from the repository alone: vendor the package inside it and install it with a ./ path, " +
	"or publish it to an index and require it by name"

// localPath is the path a local requirement installs from, as written: without extras,
// marker or URL fragment.
func localPath(text string) string {
	if i := strings.IndexAny(text, " ;#["); i >= 0 {
		return text[:i]
	}
	return text
}

// checkLocal refuses a requirement that installs from outside the repository: a path
// that climbs out of it or is absolute, or a file: URL. The image is built from the
// repository alone, where pip would only say "Expected package name".
func (rf *RequirementsFile) checkLocal(req Requirement) error {
	switch {
	case fileURLRe.MatchString(req.Text):
		return &Error{File: rf.Path, Line: req.Line, Msg: fmt.Sprintf("%s installs from a file: URL, a path on this machine outside the repository", excerpt(req.Text)),
			Hint: outsideHint}
	case req.Kind == "path":
		p := localPath(req.Text)
		if strings.HasPrefix(p, "/") || !insideRepository(path.Join(path.Dir(rf.Path), p)) {
			return &Error{File: rf.Path, Line: req.Line, Msg: fmt.Sprintf("%s is outside the repository", excerpt(p)), Hint: outsideHint}
		}
	}
	return nil
}
