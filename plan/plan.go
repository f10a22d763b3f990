package plan

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/pyship/pyship/detect"
)

const (
	// AppDir is where the repository's files go in the image.
	AppDir = "/app"
	// VenvDir is the virtualenv that holds the dependencies.
	VenvDir = "/opt/venv"
	// UserID and GroupID are the numeric ids the application runs as: not root, and
	// numeric so that "run as non-root" policies can check them.
	UserID  = 65532
	GroupID = 65532
	// UserName is the name given to UserID in /etc/passwd.
	UserName = "app"
	// DockerHub is the registry that unqualified base names live on.
	DockerHub = "docker.io"
)

// Plan is everything the build does, as data.
type Plan struct {
	Base         Base         `json:"base"`
	Platform     string       `json:"platform"`
	Dependencies Dependencies `json:"dependencies"`
	App          App          `json:"app"`
	Config       Config       `json:"config"`
	Decisions    []Decision   `json:"decisions"`
	Warnings     []string     `json:"warnings,omitempty"`
}

// Base is the image the build starts from.
type Base struct {
	// Name is the reference as the user knows it, like "python:3.11-slim".
	Name string `json:"name"`
	// Ref is the reference pulled: Name, or its mirror when a base mirror is set.
	Ref string `json:"ref"`
	// Python is the Python minor version the base carries.
	Python string `json:"python"`
}

// Dependencies says how the dependency layer is made.
type Dependencies struct {
	Installer    string   `json:"installer"`
	Requirements []string `json:"requirements,omitempty"`
	Venv         string   `json:"venv"`
}

// App says how the application layer is made.
type App struct {
	Dir string `json:"dir"`
}

// Config is the image config.
type Config struct {
	Cmd          []string          `json:"cmd"`
	Env          []string          `json:"env"`
	WorkingDir   string            `json:"working_dir"`
	User         string            `json:"user"`
	ExposedPorts []string          `json:"exposed_ports"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// Decision is one choice the plan made, with the file that caused it.
type Decision struct {
	What   string `json:"what"`
	Value  string `json:"value"`
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
}

// Options are the user's choices that override detection.
type Options struct {
	// Base replaces the whole base reference.
	Base string
	// BaseMirror is a registry (host[:port][/path]) that stands in for Docker Hub.
	BaseMirror string
	// Platform is the target platform, "os/arch"; default linux and the host's architecture.
	Platform string
	// Source and Revision become OCI labels when set.
	Source   string
	Revision string
}

// New makes the plan for a detected repository.
func New(res *detect.Result, opts Options) (*Plan, error) {
	platform := opts.Platform
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	p := &Plan{
		Platform: platform,
		Dependencies: Dependencies{
			Installer:    res.Installer,
			Requirements: res.Requirements,
			Venv:         VenvDir,
		},
		App:      App{Dir: AppDir},
		Warnings: res.Warnings,
	}

	baseName := "python:" + res.Python.Value + "-slim"
	baseSource, baseReason := res.Python.Source, "Python "+res.Python.Value
	if opts.Base != "" {
		baseName, baseSource, baseReason = opts.Base, "--base", "set by the user"
	}
	ref, err := Mirror(baseName, opts.BaseMirror)
	if err != nil {
		return nil, err
	}
	p.Base = Base{Name: baseName, Ref: ref, Python: res.Python.Value}
	p.decide("python", res.Python.Value, res.Python.Source, "")
	p.decide("base", ref, baseSource, baseReason)
	if len(res.Requirements) > 0 {
		p.decide("dependencies", "pip install -r "+strings.Join(res.Requirements, " -r "), res.Requirements[0], "")
	} else {
		p.decide("dependencies", "none", "default", "no requirements file")
	}
	p.decide("start", strings.Join(res.Start.Command, " "), res.Start.Source, res.Start.Reason)
	port := strconv.Itoa(res.Port)
	p.decide("port", port, res.PortFrom, "")

	p.Config = Config{
		Cmd: res.Start.Command,
		Env: []string{
			// ${PATH} is the base image's PATH.
			"PATH=" + VenvDir + "/bin:${PATH}",
			"VIRTUAL_ENV=" + VenvDir,
			"PYTHONUNBUFFERED=1",
			"PYTHONDONTWRITEBYTECODE=1",
			"PORT=" + port,
		},
		WorkingDir:   AppDir,
		User:         fmt.Sprintf("%d:%d", UserID, GroupID),
		ExposedPorts: []string{port + "/tcp"},
		Labels:       map[string]string{},
	}
	if opts.Source != "" {
		p.Config.Labels["org.opencontainers.image.source"] = opts.Source
	}
	if opts.Revision != "" {
		p.Config.Labels["org.opencontainers.image.revision"] = opts.Revision
	}
	p.Config.Labels["org.opencontainers.image.base.name"] = baseName
	return p, nil
}

func (p *Plan) decide(what, value, source, reason string) {
	p.Decisions = append(p.Decisions, Decision{What: what, Value: value, Source: source, Reason: reason})
}

// Mirror rewrites a Docker Hub reference to the same repository on mirror. References to
// other registries, and every reference when mirror is empty, come back fully qualified
// and otherwise unchanged. "python:3.11-slim" with mirror "127.0.0.1:5000" becomes
// "127.0.0.1:5000/library/python:3.11-slim".
func Mirror(ref, mirror string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("empty image reference")
	}
	repo, suffix := splitRef(ref)
	host, path, ok := strings.Cut(repo, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		host, path = DockerHub, repo
	}
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = DockerHub
	}
	if path == "" || strings.HasSuffix(path, "/") {
		return "", fmt.Errorf("%q is not a valid image reference: it names no repository", ref)
	}
	if host == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	if host == DockerHub && mirror != "" {
		host = strings.TrimSuffix(mirror, "/")
	}
	if strings.ToLower(path) != path {
		return "", fmt.Errorf("%q is not a valid image reference: the repository must be lowercase", ref)
	}
	return host + "/" + path + suffix, nil
}

// splitRef splits "repo:tag@digest" into the repository and the ":tag@digest" suffix.
func splitRef(ref string) (repo, suffix string) {
	if at := strings.Index(ref, "@"); at >= 0 {
		repo, suffix = ref[:at], ref[at:]
	} else {
		repo = ref
	}
	if colon := strings.LastIndex(repo, ":"); colon > strings.LastIndex(repo, "/") {
		repo, suffix = repo[:colon], repo[colon:]+suffix
	}
	return repo, suffix
}
