//go:build linux && e2e

package main

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/fixtures"
)

// The hostile-input suite (issue 8): repositories, dependencies, images and registries
// that try to harm the host, hang pyship, crash it, or make it fail without saying what to
// fix. Each case is refused with a short, clear error, or contained: it runs and a check on
// the host proves nothing escaped. The cases themselves are in hostile_cases_test.go.

// hostileKind is what a case expects.
type hostileKind int

const (
	// hostileRefused: a non-zero exit in the right band, in time, with a short message that
	// names the file (and line) and the cause, and carries no planted secret.
	hostileRefused hostileKind = iota + 1
	// hostileContained: the attempt runs (it may pass or fail, the case records which) and
	// nothing escapes: the host checks and the probes' own reports say so.
	hostileContained
)

// hostileCase is one hostile input.
type hostileCase struct {
	name  string
	class int
	kind  hostileKind
	// early cases may wait for a deadline (a hang, a registry that never answers): they are
	// started with the suite and judged after the others, so their waits overlap.
	early bool
	// setup writes the input into temporary directories and says how to run pyship on it.
	setup func(t *testing.T, s *hostileSuite) *hostileAttempt
}

func (c hostileCase) id() string { return fmt.Sprintf("c%d-%s", c.class, c.name) }

// hostileFail records a failure of a case with its cause.
type hostileFail func(cause, format string, args ...any)

// hostileAttempt is how a case runs pyship and what it expects.
type hostileAttempt struct {
	spec hostileSpec
	// also are more pyship commands started at the same moment as spec; each must succeed.
	also [][]string

	// For refused cases: the accepted exit codes (20 accepts 20-29; 2 and 130 only
	// themselves) and what the message must mention ("a|b" accepts either, any case).
	codes   []int
	mention []string

	// For contained cases.
	// mustPass: the input is harmless once contained, so pyship must succeed.
	mustPass bool
	// warn: the output must mention these (pyship tells what it left out).
	warn []string
	// refuseMention: when pyship refuses, its message must mention these.
	refuseMention []string
	// layout: the OCI layout the build wrote, read for the probes' reports and checked.
	layout string
	// probes: the run must report probe lines when it succeeds.
	probes bool
	// maxRSS bounds pyship's own peak memory.
	maxRSS int64
	// check is the case's host check.
	check func(r *hostileResult, fail hostileFail)
}

// hostileOutcome is a case's line in the tally.
type hostileOutcome struct {
	id      string
	kind    hostileKind
	failed  bool
	skipped bool
	causes  []string
	result  string
}

// hostileSuite is what the cases share.
type hostileSuite struct {
	reg   string
	nonce string
	// root holds everything the suite makes on the host; tmp is pyship's TMPDIR.
	root, tmp string
	// hostDir stands for the host outside every repository: links and images point there.
	hostDir string
	// hostSecretFile is a host file outside the repository, holding fileSentinel.
	hostSecretFile string
	fileSentinel   string
	// secretEnv plants secrets in pyship's environment; secrets are all the values that
	// must never appear in pyship's output.
	secretEnv []string
	secrets   map[string]string
	warmCache string
	// appLayout holds a plain stdlib app image that hostile images are made from.
	appLayout string
	appImage  v1.Image
	pyBase    v1.Image
	pyBaseMu  sync.Mutex
	layoutMu  sync.Mutex
	// baseLayers are layers of base images, which checkImage need not read.
	baseLayers map[v1.Hash]bool
	before     hostSnapshot
	corePat    string

	mu       sync.Mutex
	pids     map[int]bool
	outcomes []*hostileOutcome
}

func newHostileSuite(t *testing.T, reg string) *hostileSuite {
	t.Helper()
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	s := &hostileSuite{reg: reg, nonce: hex.EncodeToString(nonce), root: t.TempDir(), pids: map[int]bool{}, secrets: map[string]string{}, baseLayers: map[v1.Hash]bool{}}
	s.tmp = filepath.Join(s.root, "tmp")
	s.hostDir = filepath.Join(s.root, "host")
	s.warmCache = filepath.Join(s.root, "cache")
	for _, d := range []string{s.tmp, s.hostDir, s.warmCache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.fileSentinel = sentinelPrefix + "FILE-" + s.nonce
	s.hostSecretFile = filepath.Join(s.hostDir, "secret.txt")
	if err := os.WriteFile(s.hostSecretFile, []byte("secret: "+s.fileSentinel+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.secrets["a host file's secret"] = s.fileSentinel
	for _, kv := range []string{"PYSHIP_HOSTILE_TOKEN=" + sentinelPrefix + "ENV-", "AWS_SECRET_ACCESS_KEY=" + sentinelPrefix + "AWS-", "GITHUB_TOKEN=" + sentinelPrefix + "GH-"} {
		k, v, _ := strings.Cut(kv, "=")
		s.secretEnv = append(s.secretEnv, kv+s.nonce)
		s.secrets["the environment's "+k] = v + s.nonce
	}
	s.secrets["a secret file in the repository"] = sentinelPrefix + "REPO-" + s.nonce
	if shadow, err := os.ReadFile("/etc/shadow"); err == nil {
		for i, l := range strings.Split(string(shadow), "\n") {
			if len(strings.TrimSpace(l)) >= 10 {
				s.secrets[fmt.Sprintf("line %d of /etc/shadow", i+1)] = l
			}
			// A password hash alone, as an excerpt would show it.
			if f := strings.Split(l, ":"); len(f) > 1 && len(f[1]) >= 8 {
				s.secrets[fmt.Sprintf("the password hash on line %d of /etc/shadow", i+1)] = f[1]
			}
		}
	}
	s.corePat = readCorePattern()
	t.Cleanup(func() {
		if v := restoreCorePattern(s.corePat); v != "" {
			t.Errorf("kernel.core_pattern was %q at the end of the suite; restored", v)
		}
	})
	s.before = takeHostSnapshot()

	// A warm cache (base pulled and unpacked, empty venv made) and a plain app image.
	s.appLayout = filepath.Join(s.root, "app-oci")
	r := s.exec(t, hostileSpec{args: []string{"build", s.stdlibRepo(t), "--oci-layout", s.appLayout}, deadline: 5 * time.Minute})
	if r.code != 0 {
		t.Fatalf("building the plain app image failed (exit %d)", r.code)
	}
	s.appImage = layoutImage(t, s.appLayout, builtDigest(t, result{stdout: r.stdout, stderr: r.stderr, code: r.code}))
	// pyship's image is the base's layers, then the dependencies, the user and the app.
	s.addBaseLayers(t, s.appImage, 3)
	return s
}

// addBaseLayers records img's layers but its top n as base layers.
func (s *hostileSuite) addBaseLayers(t *testing.T, img v1.Image, n int) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls[:max(0, len(ls)-n)] {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		s.baseLayers[d] = true
	}
}

func (s *hostileSuite) addPid(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pids[pid] = true
}

// sentinelPrefix starts every secret the suite plants (but those read from /etc/shadow).
const sentinelPrefix = "PYSHIP-SENTINEL-"

// redact hides the planted secrets in what the test logs.
func (s *hostileSuite) redact(text string) string {
	for label, secret := range s.secrets {
		text = strings.ReplaceAll(text, secret, "[SECRET: "+label+"]")
	}
	return strings.ReplaceAll(text, sentinelPrefix, "[SECRET PREFIX]")
}

// TestHostile runs the hostile-input suite: every case, then a check of the whole host,
// then the tally.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("the hostile-input suite builds and boots images: not with -short")
	}
	reg := fixtures.Testbed(t)
	fixtures.Need(t, os.Geteuid() == 0, "the hostile-input suite checks host state only root can read and restore")
	cases := hostileCases()
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.id()] || c.setup == nil || c.kind == 0 {
			t.Fatalf("case %s is repeated or incomplete", c.id())
		}
		seen[c.id()] = true
	}
	start := time.Now()
	s := newHostileSuite(t, reg)

	pending := map[string]*hostilePending{}
	for _, c := range cases {
		if c.early && selected(c.id()) {
			pending[c.id()] = s.launch(t, c)
		}
	}
	ordered := slices.Clone(cases)
	sort.SliceStable(ordered, func(i, j int) bool { return !ordered[i].early && ordered[j].early })
	t.Run("cases", func(t *testing.T) {
		for _, c := range ordered {
			t.Run(c.id(), func(t *testing.T) { s.runCase(t, c, pending[c.id()]) })
		}
	})
	for _, p := range pending {
		<-p.done
	}
	s.finish(t, time.Since(start))
}

// selected reports whether -run (and -skip) would run the case's subtest, so an early
// case is not started for nothing.
func selected(id string) bool {
	full := "TestHostile/cases/" + id
	match := func(flagName string) (bool, bool) {
		f := flag.Lookup(flagName)
		if f == nil || f.Value.String() == "" {
			return false, false
		}
		parts := strings.Split(f.Value.String(), "/")
		names := strings.Split(full, "/")
		for i, p := range parts {
			if i >= len(names) {
				break
			}
			if ok, err := regexp.MatchString(p, names[i]); err != nil || !ok {
				return false, true
			}
		}
		return true, true
	}
	if skip, set := match("test.skip"); set && skip {
		return false
	}
	run, set := match("test.run")
	return !set || run
}

// hostilePending is an early case's run, under way.
type hostilePending struct {
	attempt *hostileAttempt
	result  *hostileResult
	err     error
	done    chan struct{}
}

// launch sets up an early case and starts its run in the background.
func (s *hostileSuite) launch(t *testing.T, c hostileCase) *hostilePending {
	t.Helper()
	p := &hostilePending{attempt: c.setup(t, s), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.result, p.err = s.run(p.attempt.spec)
	}()
	return p
}

// exec runs pyship, logs what it did, and stops the test if it could not be run.
func (s *hostileSuite) exec(t *testing.T, spec hostileSpec) *hostileResult {
	t.Helper()
	r, err := s.run(spec)
	if err != nil {
		t.Fatalf("running pyship: %v", err)
	}
	s.logRun(t, spec, r)
	return r
}

func (s *hostileSuite) logRun(t *testing.T, spec hostileSpec, r *hostileResult) {
	t.Helper()
	note := ""
	if r.hung {
		note = " (HUNG: killed at the deadline)"
	}
	t.Logf("pyship %s: exit %d after %s, peak RSS %d MiB%s\n%s", s.redact(strings.Join(spec.args, " ")), r.code,
		r.took.Round(time.Millisecond), r.peakRSS>>20, note, s.redact(shorten(r.stderr, 6000)))
}

// runCase sets up one case, runs it with the host guarded, and judges it.
func (s *hostileSuite) runCase(t *testing.T, c hostileCase, p *hostilePending) {
	oc := &hostileOutcome{id: c.id(), kind: c.kind}
	t.Cleanup(func() {
		oc.failed, oc.skipped = t.Failed(), t.Skipped()
		if oc.failed && len(oc.causes) == 0 {
			oc.causes = append(oc.causes, "setup")
		}
		s.mu.Lock()
		s.outcomes = append(s.outcomes, oc)
		s.mu.Unlock()
	})
	fail := func(cause, format string, args ...any) {
		t.Helper()
		if !slices.Contains(oc.causes, cause) {
			oc.causes = append(oc.causes, cause)
		}
		t.Errorf("%s: %s", cause, s.redact(fmt.Sprintf(format, args...)))
	}
	var (
		a *hostileAttempt
		r *hostileResult
	)
	if p != nil {
		<-p.done
		if p.err != nil {
			t.Fatalf("running pyship: %v", p.err)
		}
		a, r = p.attempt, p.result
		s.logRun(t, a.spec, r)
	} else {
		core := readCorePattern()
		files := guardHostFiles(hostGuardedFiles()...)
		a = c.setup(t, s)
		r = s.runWithAlso(t, a, fail)
		if v := restoreCorePattern(core); v != "" {
			fail("harmed the host", "kernel.core_pattern was changed to %q (restored to %q)", v, core)
		}
		harmed, other := files.check()
		if len(harmed) > 0 {
			fail("harmed the host", "a probe wrote to host files (restored): %s", strings.Join(harmed, ", "))
		}
		if len(other) > 0 {
			t.Logf("host files changed during the case, not by a probe (left alone): %s", strings.Join(other, ", "))
		}
	}
	s.judge(t, c, a, r, oc, fail)
	if t.Failed() {
		t.Logf("outcome: FAILED (%s), pyship %s", strings.Join(oc.causes, ", "), oc.result)
	} else {
		t.Logf("outcome: %s, pyship %s", map[hostileKind]string{hostileRefused: "refused", hostileContained: "contained"}[c.kind], oc.result)
	}
}

// hostGuardedFiles are host files that a sandbox is given or can name, and must not change.
func hostGuardedFiles() []string {
	return []string{"/etc/hosts", "/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf"}
}

// runWithAlso runs the attempt's command, and its concurrent companions if any.
func (s *hostileSuite) runWithAlso(t *testing.T, a *hostileAttempt, fail hostileFail) *hostileResult {
	t.Helper()
	if len(a.also) == 0 {
		return s.exec(t, a.spec)
	}
	var wg sync.WaitGroup
	others := make([]*hostileResult, len(a.also))
	errs := make([]error, len(a.also))
	for i, args := range a.also {
		spec := a.spec
		spec.args = args
		wg.Add(1)
		go func() {
			defer wg.Done()
			others[i], errs[i] = s.run(spec)
		}()
	}
	r := s.exec(t, a.spec)
	wg.Wait()
	for i, o := range others {
		if errs[i] != nil {
			t.Fatalf("running pyship: %v", errs[i])
		}
		s.logRun(t, hostileSpec{args: a.also[i]}, o)
		switch {
		case o.hung:
			fail("hung", "the concurrent run %d was still running after %s", i+1, a.spec.deadline)
		case o.code != 0:
			fail("failed", "the concurrent run %d on the same cache failed with exit %d: %s", i+1, o.code, shorten(errorMessage(o.stderr), 600))
		}
	}
	return r
}

// judge applies the checks every case shares, then the case's own.
func (s *hostileSuite) judge(t *testing.T, c hostileCase, a *hostileAttempt, r *hostileResult, oc *hostileOutcome, fail hostileFail) {
	t.Helper()
	if r.hung {
		fail("hung", "pyship was still running after %s and was killed", a.spec.deadline)
	}
	if m := crashRe.FindString(r.stderr); m != "" {
		fail("crashed", "pyship crashed (%q):\n%s", strings.TrimSpace(m), shorten(r.stderr, 2000))
	}
	leaked := false
	for label, secret := range s.secrets {
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			leaked = true
			fail("leaked a secret", "pyship's output carries %s", label)
		}
	}
	// A short excerpt is a leak too: every planted secret starts with the same prefix.
	if !leaked && (strings.Contains(r.stdout, sentinelPrefix) || strings.Contains(r.stderr, sentinelPrefix)) {
		fail("leaked a secret", "pyship's output carries part of a planted secret")
	}
	msg := errorMessage(r.stderr)
	if r.code != 0 && !r.hung {
		switch {
		case msg == "":
			fail("unclear message", "exit %d without a \"pyship: ...\" error message", r.code)
		case len(msg) > 4096:
			fail("message too long", "the error message is %d bytes; it must stay under 4 KB", len(msg))
		}
	}
	if r.stderrBytes > 1<<20 {
		fail("message too long", "pyship wrote %d MiB to stderr", r.stderrBytes>>20)
	}
	if msg == "" {
		msg = r.stderr
	}

	switch c.kind {
	case hostileRefused:
		switch {
		case r.hung:
		case r.code == 0:
			fail("accepted", "exit 0; want a refusal (exit %s)", bandsText(a.codes))
		case !inBands(r.code, a.codes):
			fail("wrong exit code", "exit %d; want %s", r.code, bandsText(a.codes))
		}
		if r.code != 0 && strings.TrimSpace(r.stdout) != "" && !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			fail("wrong exit code", "stdout %q on a refusal", shorten(r.stdout, 200))
		}
		if !r.hung && r.code != 0 {
			for _, m := range a.mention {
				if !mentions(msg, m) {
					fail("unclear message", "the message does not mention %q:\n%s", m, shorten(msg, 1500))
				}
			}
		}
		oc.result = fmt.Sprintf("exit %d", r.code)
	case hostileContained:
		oc.result = "passed"
		if r.code != 0 {
			oc.result = fmt.Sprintf("failed (exit %d)", r.code)
		}
		if a.mustPass && r.code != 0 && !r.hung {
			fail("failed", "exit %d; the input is harmless once contained, so pyship must succeed: %s", r.code, shorten(msg, 1500))
		}
		if r.code != 0 && !r.hung {
			for _, m := range a.refuseMention {
				if !mentions(msg, m) {
					fail("unclear message", "the refusal does not mention %q:\n%s", m, shorten(msg, 1500))
				}
			}
		}
		for _, w := range a.warn {
			if !mentions(r.stderr, w) {
				fail("silent", "nothing in pyship's output mentions %q", w)
			}
		}
		var lines []string
		if a.layout != "" && r.code == 0 {
			lines = s.checkImage(a.layout, r.stdout, fail)
		} else if r.code == 0 || strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			lines = probeLinesFromReport(r.stdout)
		}
		for _, l := range lines {
			t.Logf("probe: %s", l)
			if strings.Contains(l, " ESCAPED ") {
				fail("escaped", "%s", l)
			}
		}
		if a.probes && r.code == 0 && len(lines) == 0 {
			fail("no report", "pyship succeeded but the probes reported nothing")
		}
	}
	if a.maxRSS > 0 && r.peakRSS > a.maxRSS {
		fail("memory", "pyship's own peak RSS was %d MiB; it must stay under %d MiB", r.peakRSS>>20, a.maxRSS>>20)
	}
	if a.check != nil {
		a.check(r, fail)
	}
}

// checkImage reads the image a build wrote: the probes' reports, and what must never be in
// it (planted secrets, set-id files pyship made, whiteout names from the repository).
func (s *hostileSuite) checkImage(dir, stdout string, fail hostileFail) []string {
	var lines []string
	s.mu.Lock()
	base := maps.Clone(s.baseLayers)
	s.mu.Unlock()
	err := imageEntries(dir, stdout, func(d v1.Hash) bool { return base[d] }, func(_ int, h *tar.Header, data []byte) {
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		ours := strings.HasPrefix(name, "app/") || strings.HasPrefix(name, "opt/venv/")
		if strings.HasSuffix(name, "hostile_probe/report.txt") {
			for _, l := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(l, "HOSTILE ") {
					lines = append(lines, l)
				}
			}
		}
		for label, secret := range s.secrets {
			if strings.Contains(string(data), secret) || strings.Contains(h.Linkname, secret) {
				fail("leaked a secret", "the image's %s carries %s", name, label)
			}
		}
		if ours && h.Mode&0o6000 != 0 {
			fail("set-id file", "the image's %s has mode %o", name, h.Mode)
		}
		if strings.HasPrefix(name, "app/") && strings.HasPrefix(path.Base(name), ".wh.") {
			fail("whiteout in layer", "the application layer holds %s, which unpacks as a deletion", name)
		}
	})
	if err != nil {
		fail("unreadable image", "reading the built image: %v", err)
	}
	return lines
}

func inBands(code int, bands []int) bool {
	for _, b := range bands {
		if code == b || (b >= 10 && b < 100 && code >= b && code < b+10) {
			return true
		}
	}
	return false
}

func bandsText(bands []int) string {
	var parts []string
	for _, b := range bands {
		if b >= 10 && b < 100 {
			parts = append(parts, fmt.Sprintf("%d-%d", b, b+9))
		} else {
			parts = append(parts, fmt.Sprint(b))
		}
	}
	return strings.Join(parts, " or ")
}

// mentions reports whether text mentions one of the "|"-separated alternatives, in any case.
func mentions(text, alternatives string) bool {
	lower := strings.ToLower(text)
	for _, alt := range strings.Split(alternatives, "|") {
		if strings.Contains(lower, strings.ToLower(alt)) {
			return true
		}
	}
	return false
}

// finish checks the whole host after every case and prints the tally.
func (s *hostileSuite) finish(t *testing.T, took time.Duration) {
	t.Helper()
	s.mu.Lock()
	pids := copyPids(s.pids)
	outcomes := slices.Clone(s.outcomes)
	s.mu.Unlock()

	ours, others := s.before.leftovers(pids, []string{s.root, s.tmp})
	for _, l := range ours {
		t.Errorf("left on the host: %s", l)
	}
	if len(ours) > 0 {
		killOurs(pids)
	}
	for i, l := range others {
		if i == 20 {
			t.Logf("(and %d more changes by others)", len(others)-20)
			break
		}
		t.Logf("changed on the host, not by this suite's processes (not counted): %s", l)
	}

	var refused, contained int
	var failed, skipped []string
	byCause := map[string][]string{}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].id < outcomes[j].id })
	for _, o := range outcomes {
		switch {
		case o.failed:
			failed = append(failed, o.id)
			for _, c := range o.causes {
				byCause[c] = append(byCause[c], o.id)
			}
		case o.skipped:
			skipped = append(skipped, o.id)
		case o.kind == hostileRefused:
			refused++
		default:
			contained++
		}
	}
	report := []string{fmt.Sprintf("hostile: %d cases: %d refused with a clear error, %d contained, %d FAILED (%s)",
		len(outcomes), refused, contained, len(failed), strings.Join(failed, ", "))}
	if len(skipped) > 0 {
		report = append(report, fmt.Sprintf("hostile:   skipped (%d): %s", len(skipped), strings.Join(skipped, ", ")))
	}
	var containedFailing []string
	for _, o := range outcomes {
		if !o.failed && o.kind == hostileContained && o.result != "passed" {
			containedFailing = append(containedFailing, o.id+": "+o.result)
		}
	}
	if len(containedFailing) > 0 {
		report = append(report, "hostile:   contained, pyship itself failed: "+strings.Join(containedFailing, ", "))
	}
	causes := make([]string, 0, len(byCause))
	for c := range byCause {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		report = append(report, fmt.Sprintf("hostile:   %s (%d): %s", c, len(byCause[c]), strings.Join(byCause[c], ", ")))
	}
	if len(ours) > 0 {
		report = append(report, fmt.Sprintf("hostile:   left on the host after the suite: %d (see above)", len(ours)))
	}
	report = append(report, fmt.Sprintf("hostile: took %s", took.Round(time.Second)))
	for _, l := range report {
		t.Log(l)
		fmt.Fprintln(os.Stderr, l)
	}
}

func copyPids(m map[int]bool) map[int]bool {
	out := make(map[int]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
