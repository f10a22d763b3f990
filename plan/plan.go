package plan

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// HomeDir is the home of UserName: HOME in the image's environment, and writable.
	HomeDir = "/home/" + UserName
	// DockerHub is the registry that unqualified base names live on.
	DockerHub = "docker.io"
)

// Plan is everything the build does, as data: the commands it runs and the history it
// writes included, so that a build decides nothing the plan does not say.
type Plan struct {
	Base     Base   `json:"base"`
	Platform string `json:"platform"`
	// System are Debian packages installed on the base, from its own apt, in a layer of
	// their own below the dependencies.
	System       *System      `json:"system,omitempty"`
	Dependencies Dependencies `json:"dependencies"`
	App          App          `json:"app"`
	// BuildSteps run after the dependencies are installed; what they write in the app
	// directory becomes a layer of its own.
	BuildSteps []BuildStep `json:"build_steps,omitempty"`
	Config     Config      `json:"config"`
	// Writable are the directories the application may create files in; every other entry
	// of pyship's layers belongs to root.
	Writable []Writable `json:"writable"`
	// History are the history lines of the layers the build adds.
	History   History    `json:"history"`
	Smoke     Smoke      `json:"smoke"`
	Decisions []Decision `json:"decisions"`
	Warnings  []string   `json:"warnings,omitempty"`
}

// System says which Debian packages the image gets on top of the base. Source builds of
// dependencies may add the runtime libraries they link; the build reports those.
type System struct {
	Packages []string `json:"packages"`
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
	// Installer is the tool that installs into the venv: "uv" (InstallerUV, at
	// UVVersion) or "pip" (InstallerPip). It runs from outside the venv, which holds none.
	Installer string `json:"installer"`
	// Requirements are the files given to pip -r, relative to the repository.
	Requirements []string `json:"requirements,omitempty"`
	// Project is true when the repository itself is installed (pip install .).
	Project bool `json:"project,omitempty"`
	// Local are local paths the requirements install from; their code is in the venv.
	Local []string `json:"local,omitempty"`
	// Lock is the lock file the install follows exactly: every package pinned and hashed.
	Lock *Lock `json:"lock,omitempty"`
	// LockRequirements is where the install sees Lock as a hashed requirements file.
	LockRequirements string `json:"lock_requirements,omitempty"`
	// Packages are installed by name: what the code imports, in a repository with no
	// dependency file.
	Packages []string `json:"packages,omitempty"`
	// Files are every repository file the install depends on; they key its cache.
	Files []string `json:"files,omitempty"`
	Venv  string   `json:"venv"`
	// Wheels, when set, is the platform of the wheels the install takes, in uv's words
	// (--python-platform), for a target platform that is not the build machine's: this
	// machine's python makes the venv and uv installs wheels built for the target; what
	// it builds from source must be pure Python (the build checks every ELF file).
	Wheels string `json:"wheels,omitempty"`
	// UploadedBefore, when set (RFC 3339, UTC), has pip consider only files the index
	// received before it: the commit's time, for versions the requirements leave open.
	UploadedBefore string `json:"uploaded_before,omitempty"`
	// Steps are the commands that make the venv, in order, as they run in the build
	// sandbox.
	Steps []InstallStep `json:"steps"`
	// PipSteps make the same venv with pip, for requirements files uv cannot read and pip
	// can (a "\" continuation before a marker): uv's steps fail before installing
	// anything, and these run instead.
	PipSteps []InstallStep `json:"pip_steps,omitempty"`
}

// App says how the application layer is made.
type App struct {
	Dir string `json:"dir"`
	// Include and Exclude are .dockerignore patterns from the user's configuration,
	// applied after the built-in rules and the repository's ignore files.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
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

// Writable is a directory of the image that the application's user may create files in:
// the owner and mode pyship's layers give it.
type Writable struct {
	// Path is the directory, absolute.
	Path string `json:"path"`
	// Subdirs gives every directory below Path that pyship's layers hold the same owner
	// and mode. Files are not affected, unless Files: they stay root's, 0644 or 0755.
	Subdirs bool `json:"subdirs,omitempty"`
	// Files gives the files below Path the same owner: data the app changes at run time.
	Files bool `json:"files,omitempty"`
	// SQLite makes the SQLite databases among the files below Path (files that begin
	// "SQLite format 3", and empty files named *.sqlite3, *.sqlite, *.db or *.db3), the
	// repository's own and those build steps make, writable by GID
	// (mode 0664): data the app changes at run time, which SQLite opens read-only
	// otherwise. Their owner stays root.
	SQLite bool `json:"sqlite,omitempty"`
	UID    int  `json:"uid"`
	GID    int  `json:"gid"`
	// Mode is the directory's mode, in octal: permission bits and the sticky bit only.
	Mode string `json:"mode"`
}

// Smoke is how the smoke test checks the app.
type Smoke struct {
	Port    int               `json:"port"`
	Path    string            `json:"path"`
	Status  int               `json:"status,omitempty"`
	Body    string            `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout is how long the app has to answer.
	Timeout Duration `json:"timeout"`
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
	// HostArch is the build machine's architecture, in Go's words; default runtime.GOARCH.
	HostArch string
	// Source and Revision become OCI labels when set.
	Source   string
	Revision string
	// Committed is the time of the commit being built, zero when unknown: versions the
	// requirements leave open are resolved as the index had them then.
	Committed time.Time
	// CommittedBy says where Committed comes from, for the plan; default ".git (the last
	// commit)".
	CommittedBy string
	// Installer is "uv" or "pip", overriding the configuration's; default uv.
	Installer string
	// Labels are added to the image config, over the configuration's and the source and
	// revision labels; not over the base's name and digest, which pyship sets.
	Labels map[string]string
}

// DefaultSmokeTimeout is how long the smoke test waits for the app by default.
const DefaultSmokeTimeout = 30 * time.Second

// New makes the plan for a detected repository. Options override the repository's
// configuration, which overrides detection.
func New(res *detect.Result, opts Options) (*Plan, error) {
	cfg := res.Config
	if cfg == nil {
		cfg = &detect.Config{}
	}
	platform := opts.Platform
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	p := &Plan{
		Platform: platform,
		App:      App{Dir: AppDir, Include: cfg.Include, Exclude: cfg.Exclude},
		Warnings: res.Warnings,
	}
	if err := p.planBase(res, cfg, opts); err != nil {
		return nil, err
	}
	if err := p.planDependencies(res, cfg, opts); err != nil {
		return nil, err
	}
	if err := resolveAsOf(p, cfg, opts.Committed, cmp.Or(opts.CommittedBy, ".git (the last commit)")); err != nil {
		return nil, err
	}
	p.Dependencies.Steps = installSteps(&p.Dependencies, p.Base.Python)
	if p.Dependencies.Installer == InstallerUV && p.Dependencies.Wheels == "" {
		withPip := p.Dependencies
		withPip.Installer = InstallerPip
		p.Dependencies.PipSteps = installSteps(&withPip, p.Base.Python)
	}
	p.planFacts(res)
	if err := p.planConfig(res, cfg, opts); err != nil {
		return nil, err
	}
	if err := p.planSmoke(res, cfg); err != nil {
		return nil, err
	}
	p.History = p.history()
	return p, nil
}

// planBase picks the base image: --base, else the configuration's, else the slim image of
// the detected Python, on the mirror when one is set.
func (p *Plan) planBase(res *detect.Result, cfg *detect.Config, opts Options) error {
	name := "python:" + res.Python.Value + "-slim"
	source, reason := res.Python.Source, "Python "+res.Python.Value
	switch {
	case opts.Base != "":
		name, source, reason = opts.Base, "--base", "set by the user"
	case cfg.Base != "":
		name, source, reason = cfg.Base, cfg.Source("base"), "set in "+cfg.File
	}
	ref, err := Mirror(name, opts.BaseMirror)
	if err != nil {
		return err
	}
	p.Base = Base{Name: name, Ref: ref, Python: res.Python.Value}
	p.decide("python", res.Python.Value, res.Python.Source, res.Python.Reason)
	p.decide("base", ref, source, reason)
	return nil
}

// planDependencies says what the dependency layer installs, and with which installer.
func (p *Plan) planDependencies(res *detect.Result, cfg *detect.Config, opts Options) error {
	deps := res.Dependencies
	p.Dependencies = Dependencies{
		Requirements: deps.Requirements,
		Project:      deps.Project,
		Local:        deps.Local,
		Lock:         lockOf(deps.Lock),
		Files:        deps.Files,
		Venv:         VenvDir,
	}
	installer, source := InstallerUV, "default"
	switch {
	case opts.Installer != "":
		installer, source = opts.Installer, "--installer (or PYSHIP_INSTALLER)"
	case cfg.Installer != "":
		installer, source = cfg.Installer, cfg.Source("installer")
	}
	if installer != InstallerUV && installer != InstallerPip {
		return fmt.Errorf("%s: installer %q is neither \"uv\" nor \"pip\"", source, installer)
	}
	p.Dependencies.Installer = installer
	if err := p.planWheels(source, opts); err != nil {
		return err
	}
	if installer == InstallerUV {
		p.decide("installer", "uv "+UVVersion, source, "from outside the image: the venv holds no installer; installer = \"pip\" for pip")
	} else {
		p.decide("installer", "pip", source, "from a venv of its own, outside the image")
	}
	tool := p.Dependencies.installCommand()
	switch {
	case deps.Lock != nil:
		p.Dependencies.LockRequirements = LockRequirements
		v := fmt.Sprintf("%s --require-hashes --no-deps: %d packages locked in %s", tool, len(deps.Lock.Packages), deps.Lock.File)
		if len(deps.Lock.Local) > 0 {
			v += ", then " + strings.Join(deps.Lock.Local, " ") + " without dependencies"
		}
		p.decide("dependencies", v, deps.Source, "default groups only")
	case len(deps.Requirements) > 0 && deps.Project:
		p.decide("dependencies", tool+" -r "+strings.Join(deps.Requirements, " -r ")+" and the project", deps.Source, "")
	case len(deps.Requirements) > 0:
		p.decide("dependencies", tool+" -r "+strings.Join(deps.Requirements, " -r "), deps.Source, "")
	case deps.Project:
		p.decide("dependencies", tool+" . (the project and its dependencies)", deps.Source, "")
	case len(deps.Inferred) > 0:
		var sources []string
		for _, i := range deps.Inferred {
			p.Dependencies.Packages = append(p.Dependencies.Packages, i.Name)
			sources = append(sources, i.Import+" at "+i.Source)
		}
		p.decide("dependencies", tool+" "+strings.Join(p.Dependencies.Packages, " "), "imports",
			"no dependency file; the well-known packages the code imports ("+strings.Join(sources, ", ")+")")
	default:
		p.decide("dependencies", "none", "default", "no requirements file or installable project")
	}
	return nil
}

// planFacts records the rest of what detection found: framework, notes, system packages,
// build steps, start command and port.
func (p *Plan) planFacts(res *detect.Result) {
	if res.Framework != "" {
		p.decide("framework", res.Framework, res.Start.Source, "")
	}
	for _, n := range res.Notes {
		p.decide(n.What, n.Value, n.Source, n.Reason)
	}
	if res.System != nil {
		p.System = &System{Packages: res.System.Packages}
		p.decide("system packages", "apt-get install "+strings.Join(res.System.Packages, " "), res.System.Source, "installed from the base's Debian archive, in a layer below the dependencies")
	}
	p.BuildSteps = buildStepsOf(res.BuildSteps)
	for _, st := range res.BuildSteps {
		p.decide("build step", strings.Join(st.Command, " "), st.Source, st.Reason)
	}
	p.decide("start", strings.Join(res.Start.Command, " "), res.Start.Source, res.Start.Reason)
	p.decide("port", strconv.Itoa(res.Port.Number), res.Port.Source, "")
}

// planConfig makes the image config: command, environment, user, the directories the app
// may write, labels.
func (p *Plan) planConfig(res *detect.Result, cfg *detect.Config, opts Options) error {
	uid, gid, err := p.planUser(cfg)
	if err != nil {
		return err
	}
	p.planWritable(res, uid, gid)
	port := strconv.Itoa(res.Port.Number)
	p.Config = Config{
		Cmd:          res.Start.Command,
		Env:          imageEnv(res, cfg),
		WorkingDir:   path.Join(AppDir, res.Start.Dir),
		User:         fmt.Sprintf("%d:%d", uid, gid),
		ExposedPorts: []string{port + "/tcp"},
		Labels:       map[string]string{},
	}
	for k, v := range cfg.Labels {
		p.Config.Labels[k] = v
	}
	if opts.Source != "" {
		p.Config.Labels["org.opencontainers.image.source"] = opts.Source
	}
	if opts.Revision != "" {
		p.Config.Labels["org.opencontainers.image.revision"] = opts.Revision
	}
	maps.Copy(p.Config.Labels, opts.Labels)
	p.Config.Labels["org.opencontainers.image.base.name"] = p.Base.Name
	return nil
}

// imageEnv is the image's environment: the venv on PATH, the port, a writable HOME, what
// the start command needs, then the user's [env], which may override them.
func imageEnv(res *detect.Result, cfg *detect.Config) []string {
	env := []string{
		// ${PATH} is the base image's PATH.
		"PATH=" + VenvDir + "/bin:${PATH}",
		"VIRTUAL_ENV=" + VenvDir,
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"PORT=" + strconv.Itoa(res.Port.Number),
	}
	// Apps expect a writable home (~/.cache, ~/.config); runtimes set HOME from the image's
	// /etc/passwd only when the environment lacks it, and a numeric user may have no entry.
	env = append(env, "HOME="+HomeDir)
	if res.Start.PythonPath != "" {
		env = append(env, "PYTHONPATH="+path.Join(AppDir, res.Start.PythonPath))
	}
	env = append(env, res.Start.Env...)
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}
	return env
}

// planUser reads the configuration's user, "uid" or "uid:gid"; default UserID:GroupID.
func (p *Plan) planUser(cfg *detect.Config) (uid, gid int, err error) {
	if cfg.User == "" {
		return UserID, GroupID, nil
	}
	u, g, hasGroup := strings.Cut(cfg.User, ":")
	if uid, err = strconv.Atoi(u); err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("user %q is not \"uid\" or \"uid:gid\"", cfg.User)
	}
	gid = uid
	reason := ""
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("user %q is not \"uid\" or \"uid:gid\"", cfg.User)
		}
	} else {
		// Runtimes disagree on the group of a uid that /etc/passwd lacks (podman: 0);
		// naming it makes every runtime give the app the group that may write to /app.
		reason = "the group is the user id when not given"
	}
	p.decide("user", fmt.Sprintf("%d:%d", uid, gid), cfg.Source("user"), reason)
	return uid, gid, nil
}

// planWritable gives the app the directories it may write in.
func (p *Plan) planWritable(res *detect.Result, uid, gid int) {
	// The application's directories belong to root and its user's group, with the sticky
	// bit: the app may create files and directories there (Flask's instance/, Django's
	// db.sqlite3, uploads) but may remove or rename only its own, so it cannot rewrite its
	// code. Were they the app user's, the sticky bit would not bind it: it could unlink
	// app.py and write another. Its home is its own.
	p.Writable = []Writable{
		{Path: AppDir, Subdirs: true, SQLite: true, UID: 0, GID: gid, Mode: "1775"},
		{Path: HomeDir, UID: uid, GID: gid, Mode: "0755"},
	}
	p.decide("writable", fmt.Sprintf("%s and its directories (0:%d 1775), SQLite databases in them (0:%d 0664), %s (%d:%d 0755)", AppDir, gid, gid, HomeDir, uid, gid), "default",
		"apps write beside their code (Django's db.sqlite3, uploads) and in HOME; other files stay root's and read-only, and only root may remove them")
	for _, st := range res.BuildSteps {
		if st.Data == "" {
			continue
		}
		dir := path.Join(AppDir, st.Data)
		p.Writable = append(p.Writable, Writable{Path: dir, Subdirs: true, Files: true, UID: uid, GID: gid, Mode: "0755"})
		p.decide("writable", fmt.Sprintf("%s and all in it (%d:%d)", dir, uid, gid), st.Source, "build step "+st.Name+" makes the app's data there, which the app changes at run time")
	}
}

// planSmoke says how the smoke test checks the app: the configuration's settings over
// detection's.
func (p *Plan) planSmoke(res *detect.Result, cfg *detect.Config) error {
	s := cfg.Smoke
	p.Smoke = Smoke{Port: res.Port.Number, Path: "/", Timeout: Duration(DefaultSmokeTimeout), Status: s.Status, Body: s.Body, Headers: s.Headers}
	if res.SmokePath != nil && s.Path == "" {
		p.Smoke.Path = res.SmokePath.Value
		p.decide("smoke path", res.SmokePath.Value, res.SmokePath.Source, res.SmokePath.Reason)
	}
	if s.Path != "" {
		p.Smoke.Path = s.Path
	}
	switch {
	case s.Timeout.Duration < 0:
		file, line := detect.ParseSource(cfg.Source("smoke.timeout"))
		return &detect.Error{File: file, Line: line, Msg: fmt.Sprintf("smoke.timeout = %s is not positive", s.Timeout),
			Hint: `write how long the app has to answer, like "30s" or "2m"`}
	case s.Timeout.Duration > 0:
		p.Smoke.Timeout = Duration(s.Timeout.Duration)
	}
	return nil
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

// resolveAsOf has pip resolve the versions that requirements leave open as the package
// index had them when the commit was made: what the authors tested, and the same versions
// on every build of the commit. A lock pins everything already; resolve = "latest" in the
// configuration turns it off.
func resolveAsOf(p *Plan, cfg *detect.Config, committed time.Time, committedBy string) error {
	d := &p.Dependencies
	if d.Lock != nil || (len(d.Requirements) == 0 && !d.Project && len(d.Packages) == 0) {
		return nil
	}
	switch {
	case cfg.Resolve == "latest":
		p.decide("dependency versions", "the newest the index has", cfg.Source("resolve"), "resolve = \"latest\"")
		return nil
	case committed.IsZero():
		p.decide("dependency versions", "the newest the index has", "default", "no commit time to resolve as of (no .git)")
		return nil
	}
	cutoff, why := committed.UTC(), "versions the requirements leave open are resolved as of the commit, as its authors had them"
	if broad := detect.BroadWheels(p.Base.Python); cutoff.Before(broad) {
		// Libraries older than the Python do not build or import on it.
		cutoff, why = broad, fmt.Sprintf("versions the requirements leave open are resolved as of the commit (%s), or of when Python %s's wheels became broad, which is later", committed.UTC().Format("2006-01-02"), p.Base.Python)
	}
	d.UploadedBefore = cutoff.Format(time.RFC3339)
	p.decide("dependency versions", "as the index had them before "+d.UploadedBefore, committedBy,
		why+"; resolve = \"latest\" in pyship.toml for the newest")
	return nil
}
