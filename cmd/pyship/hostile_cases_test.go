//go:build linux && e2e

package main

import (
	"archive/tar"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/fixtures"
)

// The hostile inputs of issue 8, by its classes:
//  1. code run by the dependency install (a PEP 517 backend) in the build sandbox;
//  2. an app in the run sandbox, some as root (user = "0:0");
//  3. detection following links and reading special files;
//  4. git run on a hostile .git;
//  5. set-id files and devices from images;
//  6. image mount points that are links to host directories;
//  7. secrets in the repository, a damaged cache;
//  9. registries that never answer or flood, races, inputs that exhaust memory, huge
//     messages, whiteout names, a build writing to the base registry;
//  10. mistakes that must be refused with a message that says what to fix.
// (Class 8, cgroup v2, is tested in a VM elsewhere.)

// Cause alternatives that an acceptable message may use.
const (
	causeLink    = "link|outside the repository|not a regular file"
	causeSpecial = "not a regular file|fifo|named pipe|device|special file"
	causeSize    = "too large|too big|larger than|exceeds|size limit"
	causeDeep    = "nest|deep|depth"
	causeTimeout = "timed out|timeout|time limit|deadline|did not answer|no answer|no response|took longer"
)

// Build-time limits the fixed sandbox must enforce below these numbers.
const (
	hostileTasks  = 4096
	hostileMemory = 4 << 30
)

func hostileCases() []hostileCase {
	return []hostileCase{
		// 1. The build sandbox must not be the host's root.
		{name: "build-core-pattern", class: 1, kind: hostileContained, setup: buildProbe("core_pattern")},
		{name: "build-drop-caches", class: 1, kind: hostileContained, setup: buildProbe("drop_caches")},
		{name: "build-sysrq-and-masked-proc", class: 1, kind: hostileContained, setup: buildProbe("sysrq", "proc_masked")},
		{name: "build-userns-mount", class: 1, kind: hostileContained, setup: buildProbe("userns_mount")},
		{name: "build-keyctl-user-keyring", class: 1, kind: hostileContained, setup: keyctlCase(false)},
		{name: "build-char-device-in-repo", class: 1, kind: hostileContained, setup: kmsgDeviceCase},
		{name: "build-block-device-in-repo", class: 1, kind: hostileContained, setup: loopDeviceCase},
		{name: "build-host-loopback-v4", class: 1, kind: hostileContained, setup: canaryCase("tcp4", "127.0.0.1:0", "canary_v4", false)},
		{name: "build-host-loopback-v6", class: 1, kind: hostileContained, setup: canaryCase("tcp6", "[::1]:0", "canary_v6", false)},
		{name: "build-tiocsti", class: 1, kind: hostileContained, setup: tiocstiCase(false, "")},
		{name: "build-task-bomb", class: 1, kind: hostileContained, setup: buildProbe("tasks")},
		{name: "build-memory-hog", class: 1, kind: hostileContained, setup: buildProbe("memory")},
		{name: "build-setuid-in-cache", class: 1, kind: hostileContained, setup: setuidBuildCase},
		{name: "build-repo-write", class: 1, kind: hostileContained, setup: repoWriteCase},
		{name: "build-env-secrets", class: 1, kind: hostileContained, setup: buildProbe("env")},
		{name: "build-host-binds-write", class: 1, kind: hostileContained, setup: buildProbe("host_binds")},
		{name: "build-sleep-forever", class: 1, kind: hostileRefused, early: true, setup: sleepCase},

		// 2. The run sandbox, also for an image whose user is root.
		{name: "run-root-core-pattern", class: 2, kind: hostileContained, setup: runProbe("0:0", "core_pattern")},
		{name: "run-root-drop-caches", class: 2, kind: hostileContained, setup: runProbe("0:0", "drop_caches")},
		{name: "run-root-sysrq-and-masked-proc", class: 2, kind: hostileContained, setup: runProbe("0:0", "sysrq", "proc_masked")},
		{name: "run-root-userns-mount", class: 2, kind: hostileContained, setup: runProbe("0:0", "userns_mount")},
		{name: "run-root-keyctl-user-keyring", class: 2, kind: hostileContained, setup: keyctlCase(true)},
		{name: "run-tiocsti", class: 2, kind: hostileContained, setup: tiocstiCase(true, "")},
		{name: "run-root-tiocsti", class: 2, kind: hostileContained, setup: tiocstiCase(true, "0:0")},
		{name: "run-host-loopback", class: 2, kind: hostileContained, setup: canaryCase("tcp4", "127.0.0.1:0", "canary_v4", true)},
		{name: "run-output-flood-no-newline", class: 2, kind: hostileContained, setup: floodCase},

		// 3. Detection reads only regular files inside the repository, with a size cap, and
		// never echoes what it read.
		{name: "requirements-link-etc-shadow", class: 3, kind: hostileRefused, setup: linkCase("requirements.txt", "/etc/shadow")},
		{name: "requirements-link-host-file", class: 3, kind: hostileRefused, setup: linkCase("requirements.txt", "")},
		{name: "requirements-link-proc-environ", class: 3, kind: hostileRefused, setup: linkCase("requirements.txt", "/proc/self/environ")},
		{name: "requirements-link-dev-zero", class: 3, kind: hostileRefused, setup: linkCase("requirements.txt", "/dev/zero")},
		{name: "python-version-link-host-file", class: 3, kind: hostileRefused, setup: linkCase(".python-version", "")},
		{name: "runtime-txt-link-proc-environ", class: 3, kind: hostileRefused, setup: linkCase("runtime.txt", "/proc/self/environ")},
		{name: "pyship-toml-link-host-file", class: 3, kind: hostileRefused, setup: linkCase("pyship.toml", "")},
		{name: "pyproject-link-host-file", class: 3, kind: hostileRefused, setup: linkCase("pyproject.toml", "")},
		{name: "procfile-link-proc-environ", class: 3, kind: hostileRefused, setup: linkCase("Procfile", "/proc/self/environ")},
		{name: "included-requirements-link-host-file", class: 3, kind: hostileRefused, setup: includeLinkCase},
		{name: "included-requirements-dotdot", class: 3, kind: hostileRefused, setup: includeOutsideCase(false)},
		{name: "included-requirements-absolute", class: 3, kind: hostileRefused, setup: includeOutsideCase(true)},
		{name: "dockerignore-link-host-file", class: 3, kind: hostileRefused, setup: dockerignoreLinkCase},
		{name: "requirements-fifo", class: 3, kind: hostileRefused, early: true, setup: fifoCase("requirements.txt")},
		{name: "python-version-fifo", class: 3, kind: hostileRefused, early: true, setup: fifoCase(".python-version")},
		{name: "pyship-toml-fifo", class: 3, kind: hostileRefused, early: true, setup: fifoCase("pyship.toml")},
		{name: "pyship-toml-zero-device", class: 3, kind: hostileRefused, setup: zeroDeviceCase},
		{name: "requirements-huge-sparse", class: 3, kind: hostileRefused, setup: hugeSparseCase},
		{name: "requirements-directory", class: 3, kind: hostileRefused, setup: directoryCase},

		// 4. No program that the repository configures runs.
		{name: "git-gpg-program", class: 4, kind: hostileContained, setup: gitCase("gpg")},
		{name: "git-ssh-signature-program", class: 4, kind: hostileContained, setup: gitCase("ssh")},
		{name: "git-fsmonitor", class: 4, kind: hostileContained, setup: gitCase("fsmonitor")},
		{name: "git-gitdir-elsewhere", class: 4, kind: hostileContained, setup: gitCase("gitdir")},
		{name: "git-head-fifo", class: 4, kind: hostileContained, early: true, setup: gitCase("head-fifo")},
		{name: "git-head-link-proc-environ", class: 4, kind: hostileContained, setup: gitCase("head-environ")},

		// 5. Unpacked images carry no set-id bits or devices into the cache.
		{name: "image-setuid-oci-layout", class: 5, kind: hostileContained, setup: setuidImageCase(false)},
		{name: "image-setuid-registry", class: 5, kind: hostileContained, setup: setuidImageCase(true)},
		{name: "base-setuid-build", class: 5, kind: hostileContained, setup: setuidBaseCase},
		{name: "image-device-nodes", class: 5, kind: hostileContained, setup: deviceImageCase},

		// 6. Mount points are resolved inside the image's root.
		{name: "image-etc-absolute-link", class: 6, kind: hostileContained, setup: etcLinkImageCase(false)},
		{name: "image-etc-dotdot-link", class: 6, kind: hostileContained, setup: etcLinkImageCase(true)},
		{name: "image-tmp-absolute-link", class: 6, kind: hostileContained, setup: dirLinkImageCase("tmp")},
		{name: "image-dev-absolute-link", class: 6, kind: hostileContained, setup: dirLinkImageCase("dev")},
		{name: "base-etc-absolute-link-build", class: 6, kind: hostileContained, setup: linkBaseCase("etc")},
		{name: "base-run-absolute-link-build", class: 6, kind: hostileContained, setup: linkBaseCase("run")},

		// 7. Secrets stay out of images, with a warning; a damaged cache heals.
		{name: "secret-aws-credentials", class: 7, kind: hostileContained, setup: secretCase(".aws/credentials", "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = %s\n")},
		{name: "secret-netrc", class: 7, kind: hostileContained, setup: secretCase(".netrc", "machine example.com login me password %s\n")},
		{name: "secret-id-rsa", class: 7, kind: hostileContained, setup: secretCase("id_rsa", "-----BEGIN RSA PRIVATE KEY-----\n%s\n-----END RSA PRIVATE KEY-----\n")},
		{name: "secret-ssh-id-ed25519", class: 7, kind: hostileContained, setup: secretCase(".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n")},
		{name: "secret-docker-config", class: 7, kind: hostileContained, setup: secretCase(".docker/config.json", `{"auths": {"ghcr.io": {"auth": "%s"}}}`+"\n")},
		{name: "secret-npmrc", class: 7, kind: hostileContained, setup: secretCase(".npmrc", "//registry.npmjs.org/:_authToken=%s\n")},
		{name: "secret-pypirc", class: 7, kind: hostileContained, setup: secretCase(".pypirc", "[pypi]\nusername = __token__\npassword = %s\n")},
		{name: "secret-credentials-json", class: 7, kind: hostileContained, setup: secretCase("credentials.json", `{"type": "service_account", "private_key": "%s"}`+"\n")},
		{name: "secret-gcloud-credentials", class: 7, kind: hostileContained, setup: secretCase(".config/gcloud/application_default_credentials.json", `{"type": "authorized_user", "refresh_token": "%s"}`+"\n")},
		{name: "cache-index-truncated", class: 7, kind: hostileContained, setup: damagedCacheCase("oci/index.json")},
		{name: "cache-layer-truncated", class: 7, kind: hostileContained, setup: damagedCacheCase("layers/sha256-*.tar.gz")},

		// 9. Deadlines, races, memory, message sizes, layer names, the base registry.
		{name: "publish-registry-never-answers", class: 9, kind: hostileRefused, early: true, setup: blackholeCase("publish", 0)},
		{name: "publish-registry-never-answers-sigterm", class: 9, kind: hostileRefused, early: true, setup: blackholeCase("publish", 3*time.Second)},
		{name: "test-image-registry-never-answers", class: 9, kind: hostileRefused, early: true, setup: blackholeCase("test", 0)},
		{name: "publish-registry-huge-error", class: 9, kind: hostileRefused, setup: hugeErrorCase},
		{name: "concurrent-builds-one-cache", class: 9, kind: hostileContained, setup: concurrentCase},
		{name: "pyship-toml-deeply-nested-table", class: 9, kind: hostileRefused, setup: deepTOMLCase("pyship.toml")},
		{name: "pyproject-deeply-nested-tool-table", class: 9, kind: hostileRefused, setup: deepTOMLCase("pyproject.toml")},
		{name: "message-huge-requirement-line", class: 9, kind: hostileRefused, setup: hugeLineCase("requirements.txt")},
		{name: "message-huge-toml-key", class: 9, kind: hostileRefused, setup: hugeLineCase("pyship.toml")},
		{name: "message-huge-python-version", class: 9, kind: hostileRefused, setup: hugeLineCase(".python-version")},
		{name: "whiteout-names-in-repo", class: 9, kind: hostileContained, setup: whiteoutCase},
		{name: "build-writes-base-registry", class: 9, kind: hostileContained, setup: registryWriteCase},

		// 10. Mistakes refused with a message that says what to fix.
		{name: "requirements-dangling-link", class: 10, kind: hostileRefused, setup: danglingCase},
		// A BOM and UTF-16 are what editors on Windows write, and pip reads both: pyship
		// reads them as pip does.
		{name: "procfile-bom", class: 10, kind: hostileContained, setup: planAccepts("Procfile", "\ufeffweb: python -m http.server $PORT\n", "http.server")},
		{name: "procfile-garbage", class: 10, kind: hostileRefused, setup: procfileCase("\x00\x01 this is not a Procfile\n", "Procfile:1")},
		{name: "requirements-utf16le", class: 10, kind: hostileContained, setup: planAccepts("requirements.txt", utf16Text("flask==3.1.3\n", false), "requirements.txt")},
		{name: "requirements-utf16be", class: 10, kind: hostileContained, setup: planAccepts("requirements.txt", utf16Text("flask==3.1.3\n", true), "requirements.txt")},
		{name: "pyproject-utf16le", class: 10, kind: hostileRefused, setup: utf16Case("pyproject.toml", "[project]\nname = \"app\"\nversion = \"1\"\n", false)},
		{name: "dead-index-url", class: 10, kind: hostileRefused, setup: deadIndexCase},
		{name: "dockerignore-excludes-start", class: 10, kind: hostileRefused, setup: dockerignoreStartCase},
		{name: "requirement-dotdot-path", class: 10, kind: hostileRefused, setup: dotdotRequirementCase},
		{name: "tag-flag-leading-dash", class: 10, kind: hostileRefused, setup: leadingDashCase(false)},
		{name: "image-tag-leading-dash", class: 10, kind: hostileRefused, setup: leadingDashCase(true)},
	}
}

// Repositories.

func hostileFixture(t *testing.T, name string) []byte {
	t.Helper()
	return mustRead(t, filepath.Join("..", "..", "fixtures", "hostile", name))
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stdlibRepo is a plain stdlib web app (fixtures/stdlib-port), with files added.
func (s *hostileSuite) stdlibRepo(t *testing.T, files ...map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	writeFiles(t, dir, map[string]string{"server.py": string(mustRead(t, filepath.Join("..", "..", "fixtures", "stdlib-port", "server.py")))})
	for _, f := range files {
		writeFiles(t, dir, f)
	}
	return dir
}

// probeConfig is hostile.json: which probes run and what they need.
func (s *hostileSuite) probeConfig(t *testing.T, probes ...string) map[string]any {
	return map[string]any{
		"probes":          probes,
		"core_pattern":    "core.pyship-hostile-" + s.nonce,
		"sentinel_prefix": sentinelPrefix,
		"marker":          "pyship-hostile-device-" + s.nonce,
		"tty_marker":      "echo pyship-hostile-tty-" + s.nonce,
		"key_desc":        "pyship-hostile-" + s.nonce + "-" + filepath.Base(t.Name()),
		"tasks_target":    hostileTasks,
		"memory_target":   hostileMemory,
		"flood_mib":       400,
		"setuid_path":     "/opt/venv/bin/hostile-suid",
		"registry":        s.reg,
		"registry_repo":   "hostile/build-" + s.nonce,
		"device":          "/app/node",
	}
}

// probeProject is a project whose PEP 517 backend (in the tree, needing nothing from the
// index) runs the probes while pip installs it in the build sandbox.
func (s *hostileSuite) probeProject(t *testing.T, cfg map[string]any) string {
	t.Helper()
	dir := s.stdlibRepo(t)
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"pyproject.toml": "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n[project]\nname = \"hostile-probe\"\nversion = \"0.1\"\n",
		"backend.py":     string(hostileFixture(t, "backend.py")),
		"probes.py":      string(hostileFixture(t, "probes.py")),
		"hostile.json":   string(data),
	})
	return dir
}

// probeApp is an app that runs the probes when it starts in the run sandbox, as user.
func (s *hostileSuite) probeApp(t *testing.T, cfg map[string]any, user string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"server.py":    string(hostileFixture(t, "server.py")),
		"probes.py":    string(hostileFixture(t, "probes.py")),
		"hostile.json": string(data),
	}
	if user != "" {
		files["pyship.toml"] = fmt.Sprintf("user = %q\n", user)
	}
	writeFiles(t, dir, files)
	return dir
}

// buildAttempt builds repo into an OCI layout, whose image the judge reads.
func (s *hostileSuite) buildAttempt(t *testing.T, repo, cache string) *hostileAttempt {
	out := filepath.Join(t.TempDir(), "oci")
	var env []string
	if cache != "" {
		env = append(env, "PYSHIP_CACHE_DIR="+cache)
	}
	return &hostileAttempt{spec: hostileSpec{args: []string{"build", repo, "--oci-layout", out}, env: env, deadline: 3 * time.Minute}, layout: out, probes: true}
}

// testAttempt smoke-tests repo; the app's probe lines come back in the JSON report.
func (s *hostileSuite) testAttempt(repo string) *hostileAttempt {
	return &hostileAttempt{spec: hostileSpec{args: []string{"test", "--json", "--grace", "1s", repo}, deadline: 3 * time.Minute}, probes: true}
}

// planRefusal runs pyship plan on repo, which must be refused in the detect band.
func planRefusal(repo string, mention ...string) *hostileAttempt {
	return &hostileAttempt{spec: hostileSpec{args: []string{"plan", repo}, deadline: 20 * time.Second, limitMemory: true}, codes: []int{exitDetect}, mention: mention}
}

// Class 1 and 2: probes.

func buildProbe(probes ...string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		return s.buildAttempt(t, s.probeProject(t, s.probeConfig(t, probes...)), "")
	}
}

func runProbe(user string, probes ...string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		return s.testAttempt(s.probeApp(t, s.probeConfig(t, probes...), user))
	}
}

func keyctlCase(run bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		cfg := s.probeConfig(t, "keyctl")
		desc := cfg["key_desc"].(string)
		var a *hostileAttempt
		if run {
			a = s.testAttempt(s.probeApp(t, cfg, "0:0"))
		} else {
			a = s.buildAttempt(t, s.probeProject(t, cfg), "")
		}
		a.check = func(r *hostileResult, fail hostileFail) {
			if removeUserKey(desc) {
				fail("harmed the host", "the sandbox added a key to root's user keyring on the host (removed)")
			}
		}
		return a
	}
}

// kmsgDeviceCase: the repository carries a character device node for the kernel log
// (/dev/kmsg); a line written through it would show in the host's kernel log.
func kmsgDeviceCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	cfg := s.probeConfig(t, "device")
	marker := cfg["marker"].(string)
	repo := s.probeProject(t, cfg)
	if err := unix.Mknod(filepath.Join(repo, "node"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	a := s.buildAttempt(t, repo, "")
	a.check = func(r *hostileResult, fail hostileFail) {
		if kernelLogHas(marker) {
			fail("harmed the host", "the build wrote to the host's kernel log through a device node in the repository")
		}
	}
	return a
}

// loopDeviceCase: the repository carries a block device node for a loop device (a file
// the test holds); nothing written through it may reach the file.
func loopDeviceCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	ld, err := newLoopDevice(t)
	fixtures.Need(t, err == nil, fmt.Sprintf("no loop device: %v", err))
	cfg := s.probeConfig(t, "device")
	repo := s.probeProject(t, cfg)
	if err := unix.Mknod(filepath.Join(repo, "node"), unix.S_IFBLK|0o666, int(ld.rdev)); err != nil {
		t.Fatal(err)
	}
	a := s.buildAttempt(t, repo, "")
	a.check = func(r *hostileResult, fail hostileFail) {
		if ld.contains(cfg["marker"].(string)) {
			fail("harmed the host", "the build wrote to a host block device through a device node in the repository")
		}
	}
	return a
}

func canaryCase(network, addr, key string, run bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		c := newHostileCanary(t, network, addr)
		fixtures.Need(t, c != nil, "no "+addr+" on this machine")
		cfg := s.probeConfig(t, key)
		cfg[key] = c.port()
		var a *hostileAttempt
		if run {
			a = s.testAttempt(s.probeApp(t, cfg, ""))
		} else {
			a = s.buildAttempt(t, s.probeProject(t, cfg), "")
		}
		a.check = func(r *hostileResult, fail hostileFail) {
			if n := c.hits.Load(); n > 0 {
				fail("harmed the host", "a service listening only on the host's %s was reached %d times", addr, n)
			}
		}
		return a
	}
}

// tiocstiCase gives pyship a terminal, as a person running it has, and checks nothing was
// typed into it.
func tiocstiCase(run bool, user string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		cfg := s.probeConfig(t, "tiocsti")
		var a *hostileAttempt
		if run {
			a = s.testAttempt(s.probeApp(t, cfg, user))
		} else {
			a = s.buildAttempt(t, s.probeProject(t, cfg), "")
		}
		a.spec.tty = true
		marker := cfg["tty_marker"].(string)
		a.check = func(r *hostileResult, fail hostileFail) {
			if strings.Contains(r.ttyInput, marker) || strings.Contains(r.stderr, marker) {
				fail("harmed the host", "the sandbox typed into the user's terminal (TIOCSTI)")
			}
		}
		return a
	}
}

func setuidBuildCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	cache := t.TempDir()
	a := s.buildAttempt(t, s.probeProject(t, s.probeConfig(t, "setuid")), cache)
	a.check = cacheCheck(cache)
	return a
}

// cacheCheck: pyship's cache holds no set-id file and no device node.
func cacheCheck(cache string) func(*hostileResult, hostileFail) {
	return func(r *hostileResult, fail hostileFail) {
		if found := setIDFiles(cache); len(found) > 0 {
			fail("set-id file", "%d set-id files in pyship's cache: %s", len(found), firstFew(found))
		}
		if found := specialFiles(cache); len(found) > 0 {
			fail("device in cache", "%d device nodes or FIFOs in pyship's cache: %s", len(found), firstFew(found))
		}
	}
}

func repoWriteCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.probeProject(t, s.probeConfig(t, "repo_write"))
	before := treeDigest(repo)
	a := s.buildAttempt(t, repo, "")
	a.check = func(r *hostileResult, fail hostileFail) {
		if treeDigest(repo) != before {
			fail("harmed the host", "the build changed the user's repository on the host")
		}
	}
	return a
}

func sleepCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	a := s.buildAttempt(t, s.probeProject(t, s.probeConfig(t, "sleep")), t.TempDir())
	// The interface this case assumes: PYSHIP_BUILD_TIMEOUT bounds a build's sandboxed
	// steps; the default is long, so the case sets a short one.
	a.spec.env = append(a.spec.env, "PYSHIP_BUILD_TIMEOUT=20s")
	a.spec.deadline = 100 * time.Second
	a.codes, a.mention = []int{exitBuild}, []string{causeTimeout}
	return a
}

func floodCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	a := s.testAttempt(s.probeApp(t, s.probeConfig(t, "flood"), ""))
	a.maxRSS = 256 << 20
	return a
}

// Class 3: detection.

// linkCase makes name a symbolic link to target (the suite's host secret file when "").
func linkCase(name, target string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		if target == "" {
			target = s.hostSecretFile
		}
		repo := s.stdlibRepo(t)
		if err := os.Symlink(target, filepath.Join(repo, name)); err != nil {
			t.Fatal(err)
		}
		return planRefusal(repo, name, causeLink)
	}
}

func includeLinkCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t, map[string]string{"requirements.txt": "-r extra.txt\n"})
	if err := os.Symlink(s.hostSecretFile, filepath.Join(repo, "extra.txt")); err != nil {
		t.Fatal(err)
	}
	return planRefusal(repo, "extra.txt", causeLink)
}

func includeOutsideCase(absolute bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		repo := s.stdlibRepo(t)
		target := s.hostSecretFile
		if !absolute {
			rel, err := filepath.Rel(repo, s.hostSecretFile)
			if err != nil {
				t.Fatal(err)
			}
			target = rel
		}
		writeFiles(t, repo, map[string]string{"requirements.txt": "-r " + target + "\n"})
		return planRefusal(repo, "requirements.txt:1", "outside|absolute")
	}
}

func dockerignoreLinkCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t)
	if err := os.Symlink(s.hostSecretFile, filepath.Join(repo, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	a := planRefusal(repo, ".dockerignore", causeLink)
	a.spec.args = []string{"build", repo, "--oci-layout", filepath.Join(t.TempDir(), "oci")}
	a.spec.deadline = 2 * time.Minute
	a.codes = []int{exitDetect, exitBuild}
	return a
}

func fifoCase(name string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		repo := s.stdlibRepo(t)
		if err := unix.Mkfifo(filepath.Join(repo, name), 0o644); err != nil {
			t.Fatal(err)
		}
		return planRefusal(repo, name, causeSpecial)
	}
}

func zeroDeviceCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t)
	if err := unix.Mknod(filepath.Join(repo, "pyship.toml"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	return planRefusal(repo, "pyship.toml", causeSpecial)
}

func hugeSparseCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t)
	f, err := os.Create(filepath.Join(repo, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 64 MiB that take no disk.
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return planRefusal(repo, "requirements.txt", causeSize)
}

func directoryCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t)
	if err := os.Mkdir(filepath.Join(repo, "requirements.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	return planRefusal(repo, "requirements.txt", "directory|not a regular file")
}

// Class 4: git.

// gitCase makes a repository whose .git tries to run a program: the program would create
// a marker file on the host. pyship plan must succeed without running it.
func gitCase(kind string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		repo := s.stdlibRepo(t)
		dir := t.TempDir()
		marker := filepath.Join(dir, "ran")
		prog := filepath.Join(dir, "prog")
		writeFiles(t, dir, map[string]string{"prog": "#!/bin/sh\ntouch " + marker + "\ncat >/dev/null\nexit 1\n"})
		if err := os.Chmod(prog, 0o755); err != nil {
			t.Fatal(err)
		}
		gitDir := filepath.Join(repo, ".git")
		if kind == "gitdir" {
			gitDir = filepath.Join(dir, "elsewhere.git")
		}
		git := func(args ...string) string {
			t.Helper()
			cmd := exec.Command("git", append([]string{"--git-dir", gitDir, "--work-tree", repo}, args...)...)
			cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("git %s: %v", strings.Join(args, " "), err)
			}
			return strings.TrimSpace(string(out))
		}
		git("init", "-q")
		git("add", "server.py")
		tree := git("write-tree")
		sig := "-----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----"
		if kind == "ssh" {
			sig = "-----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----"
		}
		commit := fmt.Sprintf("tree %s\nauthor a <a@example.com> 1700000000 +0000\ncommitter a <a@example.com> 1700000000 +0000\ngpgsig %s\n\nsigned\n", tree, sig)
		obj := filepath.Join(dir, "commit")
		writeFiles(t, dir, map[string]string{"commit": commit})
		git("update-ref", "HEAD", git("hash-object", "-t", "commit", "-w", obj))
		git("config", "log.showSignature", "true")
		switch kind {
		case "gpg", "gitdir":
			git("config", "gpg.program", prog)
		case "ssh":
			git("config", "gpg.ssh.program", prog)
			git("config", "gpg.ssh.allowedSignersFile", "/dev/null")
		case "fsmonitor":
			git("config", "core.fsmonitor", prog)
			git("config", "core.pager", prog)
			git("config", "diff.external", prog)
		case "head-fifo":
			if err := os.Remove(filepath.Join(gitDir, "HEAD")); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(filepath.Join(gitDir, "HEAD"), 0o644); err != nil {
				t.Fatal(err)
			}
		case "head-environ":
			if err := os.Remove(filepath.Join(gitDir, "HEAD")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/proc/self/environ", filepath.Join(gitDir, "HEAD")); err != nil {
				t.Fatal(err)
			}
		}
		if kind == "gitdir" {
			writeFiles(t, repo, map[string]string{".git": "gitdir: " + gitDir + "\n"})
		}
		return &hostileAttempt{
			spec:     hostileSpec{args: []string{"plan", repo}, deadline: 20 * time.Second, limitMemory: true},
			mustPass: true,
			check: func(r *hostileResult, fail hostileFail) {
				if _, err := os.Stat(marker); err == nil {
					fail("harmed the host", "a program named by the repository's git configuration ran as root")
				}
			},
		}
	}
}

// Class 5: set-id files and devices in images.

var setuidEntries = []hostileEntry{
	{name: "usr/local/bin/hostile-suid", typ: tar.TypeReg, mode: 0o4755, content: "#!/bin/sh\nid\n"},
	{name: "usr/local/bin/hostile-sgid", typ: tar.TypeReg, mode: 0o2755, content: "#!/bin/sh\nid\n"},
}

func setuidImageCase(registry bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		img := withLayer(t, s.appImage, setuidEntries...)
		ref := s.inLayout(t, img)
		if registry {
			ref = push(t, img, fmt.Sprintf("%s/hostile/setuid:%s", s.reg, s.nonce))
		}
		cache := t.TempDir()
		return &hostileAttempt{
			spec:  hostileSpec{args: []string{"test", "--json", "--grace", "1s", "--from", ref}, env: []string{"PYSHIP_CACHE_DIR=" + cache}, deadline: 2 * time.Minute},
			check: cacheCheck(cache),
		}
	}
}

// pythonBase is the test bed's Python base image.
func (s *hostileSuite) pythonBase(t *testing.T) v1.Image {
	t.Helper()
	s.pyBaseMu.Lock()
	defer s.pyBaseMu.Unlock()
	if s.pyBase == nil {
		s.pyBase = remoteImage(t, s.reg+"/library/python:3.13-slim")
		s.addBaseLayers(t, s.pyBase, 0)
	}
	return s.pyBase
}

func setuidBaseCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	base := push(t, withLayer(t, s.pythonBase(t), setuidEntries...), fmt.Sprintf("%s/hostile/python-setuid:%s", s.reg, s.nonce))
	repo := s.stdlibRepo(t, map[string]string{"pyship.toml": fmt.Sprintf("base = %q\n", base)})
	cache := t.TempDir()
	a := s.buildAttempt(t, repo, cache)
	a.probes = false
	a.check = cacheCheck(cache)
	return a
}

func deviceImageCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	img := withLayer(t, s.appImage,
		hostileEntry{name: "app/mem", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 1},
		hostileEntry{name: "app/kmsg", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 11},
		hostileEntry{name: "app/disk", typ: tar.TypeBlock, mode: 0o666, major: 8, minor: 0},
		hostileEntry{name: "app/pipe", typ: tar.TypeFifo, mode: 0o666},
	)
	cache := t.TempDir()
	return &hostileAttempt{
		spec:  hostileSpec{args: []string{"test", "--json", "--grace", "1s", "--from", s.inLayout(t, img)}, env: []string{"PYSHIP_CACHE_DIR=" + cache}, deadline: 2 * time.Minute},
		check: cacheCheck(cache),
	}
}

// Class 6: mount points through links.

// hostDirGuard makes a directory on the host with files, and checks them after.
func hostDirGuard(t *testing.T, s *hostileSuite, name string, files map[string]string) (string, func(*hostileResult, hostileFail)) {
	dir := filepath.Join(s.hostDir, name+"-"+filepath.Base(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	before := treeDigest(dir)
	return dir, func(r *hostileResult, fail hostileFail) {
		if treeDigest(dir) != before {
			fail("harmed the host", "the sandbox changed the host directory %s that the image's /%s links to", dir, name)
		}
	}
}

func etcLinkImageCase(dotdot bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		dir, check := hostDirGuard(t, s, "etc", map[string]string{"hosts": "# the host's hosts file\n", "resolv.conf": "# the host's resolv.conf\n"})
		target := dir
		if dotdot {
			target = strings.Repeat("../", 40) + strings.TrimPrefix(dir, "/")
		}
		img := withLayer(t, s.appImage, hostileEntry{name: "etc", typ: tar.TypeSymlink, mode: 0o777, linkname: target})
		return &hostileAttempt{
			spec:  hostileSpec{args: []string{"test", "--json", "--grace", "1s", "--from", s.inLayout(t, img)}, deadline: 2 * time.Minute},
			check: check,
		}
	}
}

func dirLinkImageCase(name string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		dir, check := hostDirGuard(t, s, name, map[string]string{"keep": "host file\n"})
		img := withLayer(t, s.appImage, hostileEntry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: dir})
		return &hostileAttempt{
			spec:  hostileSpec{args: []string{"test", "--json", "--grace", "1s", "--from", s.inLayout(t, img)}, deadline: 2 * time.Minute},
			check: check,
		}
	}
}

// linkBaseCase builds on a base image (named in pyship.toml) whose /name is a link to a
// host directory: the build sandbox's mount points must stay inside the root.
func linkBaseCase(name string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		dir, check := hostDirGuard(t, s, name, map[string]string{"hosts": "# the host's hosts file\n", "resolv.conf": "# the host's resolv.conf\n"})
		img := withLayer(t, s.pythonBase(t), hostileEntry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: dir})
		base := push(t, img, fmt.Sprintf("%s/hostile/python-%s-link:%s", s.reg, name, s.nonce))
		repo := s.stdlibRepo(t, map[string]string{"pyship.toml": fmt.Sprintf("base = %q\n", base)})
		a := s.buildAttempt(t, repo, t.TempDir())
		a.probes = false
		a.check = check
		return a
	}
}

// Class 7: secrets and the cache.

func secretCase(file, format string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		repo := s.stdlibRepo(t, map[string]string{file: fmt.Sprintf(format, sentinelPrefix+"REPO-"+s.nonce)})
		a := s.buildAttempt(t, repo, "")
		a.probes, a.mustPass = false, true
		a.warn = []string{file}
		return a
	}
}

// damagedCacheCase builds once, damages the cache (truncates the files matching glob to
// half), and builds again: the second build must succeed with a valid image.
func damagedCacheCase(glob string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		cache := t.TempDir()
		repo := s.stdlibRepo(t)
		first := s.exec(t, hostileSpec{args: []string{"build", repo}, env: []string{"PYSHIP_CACHE_DIR=" + cache}, deadline: 3 * time.Minute})
		if first.code != 0 {
			t.Fatalf("the first build failed (exit %d)", first.code)
		}
		files, _ := filepath.Glob(filepath.Join(cache, glob))
		if len(files) == 0 {
			t.Fatalf("no %s in the cache to damage", glob)
		}
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(f, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}
		a := s.buildAttempt(t, repo, cache)
		a.probes, a.mustPass = false, true
		out := a.layout
		a.check = func(r *hostileResult, fail hostileFail) {
			if r.code != 0 {
				return
			}
			if err := validateLayout(out); err != nil {
				fail("failed", "the image built after the cache was damaged is not valid: %v", err)
			}
		}
		return a
	}
}

// Class 9.

func blackholeCase(cmd string, sigterm time.Duration) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		addr := blackholeRegistry(t)
		ref := addr + "/hostile/app:v1"
		var args []string
		codes := []int{exitPublish}
		if cmd == "publish" {
			args = []string{"publish", s.stdlibRepo(t), "--image", ref, "--skip-test"}
		} else {
			args = []string{"test", "--from", ref}
			codes = []int{exitBuild}
		}
		a := &hostileAttempt{
			// PYSHIP_REGISTRY_TIMEOUT is a hint; the deadline must hold without it too.
			spec:    hostileSpec{args: args, env: []string{"PYSHIP_CACHE_DIR=" + t.TempDir(), "PYSHIP_REGISTRY_TIMEOUT=10s"}, deadline: 150 * time.Second},
			codes:   codes,
			mention: []string{addr, causeTimeout},
		}
		if sigterm > 0 {
			a.spec.sigterm, a.spec.deadline = sigterm, sigterm+15*time.Second
			a.codes, a.mention = []int{exitInterrupted}, []string{"interrupted"}
		}
		return a
	}
}

func hugeErrorCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	addr := hugeErrorRegistry(t)
	return &hostileAttempt{
		spec:    hostileSpec{args: []string{"publish", s.stdlibRepo(t), "--image", addr + "/hostile/app:v1", "--skip-test"}, env: []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, deadline: 2 * time.Minute},
		codes:   []int{exitPublish},
		mention: []string{addr, "500|server error"},
		maxRSS:  256 << 20,
	}
}

// concurrentCase runs three builds of different apps on one cold cache at once.
func concurrentCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	cache := t.TempDir()
	var repos []string
	for i := 0; i < 3; i++ {
		repos = append(repos, s.stdlibRepo(t, map[string]string{"extra.py": fmt.Sprintf("N = %d\n", i)}))
	}
	a := &hostileAttempt{
		spec:     hostileSpec{args: []string{"build", repos[0]}, env: []string{"PYSHIP_CACHE_DIR=" + cache}, deadline: 3 * time.Minute},
		also:     [][]string{{"build", repos[1]}, {"build", repos[2]}},
		mustPass: true,
	}
	a.check = func(r *hostileResult, fail hostileFail) {
		// The cache they shared still serves a build.
		again, err := s.run(hostileSpec{args: []string{"build", repos[1]}, env: []string{"PYSHIP_CACHE_DIR=" + cache}, deadline: 2 * time.Minute})
		if err != nil || again.code != 0 {
			fail("failed", "a build after the concurrent ones failed: %v %s", err, shorten(errorMessage(again.stderr), 600))
		}
		if err := validateLayout(filepath.Join(cache, "oci")); err != nil {
			fail("failed", "the cache's OCI layout is damaged: %v", err)
		}
	}
	return a
}

func deepTOMLCase(file string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		const depth = 200000
		var content string
		if file == "pyship.toml" {
			content = "smoke = " + strings.Repeat("{a = ", depth) + "1" + strings.Repeat("}", depth) + "\n"
		} else {
			content = "[project]\nname = \"app\"\nversion = \"1\"\n\n[tool.other]\nx = " + strings.Repeat("{a = ", depth) + "1" + strings.Repeat("}", depth) + "\n"
		}
		return planRefusal(s.stdlibRepo(t, map[string]string{file: content}), file, causeDeep)
	}
}

func hugeLineCase(file string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		huge := strings.Repeat("x", 3<<20)
		var content, where string
		switch file {
		case "requirements.txt":
			content, where = "flask==3.1.3\n"+huge+"!!\n", "requirements.txt:2"
		case "pyship.toml":
			content, where = huge+" = 1\n", "pyship.toml:1"
		default:
			content, where = "3."+strings.Repeat("9", 3<<20)+"\n", file+":1"
		}
		return planRefusal(s.stdlibRepo(t, map[string]string{file: content}), where)
	}
}

func whiteoutCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t, map[string]string{".wh.server.py": "", "static/.wh..wh..opq": "", "static/style.css": "body {}\n"})
	a := s.buildAttempt(t, repo, "")
	a.probes = false
	a.refuseMention = []string{".wh."}
	return a
}

func registryWriteCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	cfg := s.probeConfig(t, "registry_write")
	cfg["registry_repo"] = fmt.Sprintf("hostile/build-%s-%d", s.nonce, time.Now().UnixNano())
	a := s.buildAttempt(t, s.probeProject(t, cfg), "")
	ref := s.reg + "/" + cfg["registry_repo"].(string) + ":pwned"
	a.check = func(r *hostileResult, fail hostileFail) {
		if tagExists(ref) {
			fail("harmed the host", "the build pushed %s to the host-only base registry", ref)
		}
	}
	return a
}

// Class 10.

func danglingCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t)
	if err := os.Symlink("requirements/base.txt", filepath.Join(repo, "requirements.txt")); err != nil {
		t.Fatal(err)
	}
	return planRefusal(repo, "requirements.txt", "link|does not exist|missing|dangling")
}

func procfileCase(content, cause string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		return planRefusal(s.stdlibRepo(t, map[string]string{"Procfile": content}), "Procfile", cause)
	}
}

func utf16Case(file, text string, bigEndian bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		return planRefusal(s.stdlibRepo(t, map[string]string{file: utf16Text(text, bigEndian)}), file, "UTF-16")
	}
}

// utf16Text is text in UTF-16 with a byte order mark, as Windows editors write it.
func utf16Text(text string, bigEndian bool) string {
	units := append([]uint16{0xfeff}, utf16.Encode([]rune(text))...)
	data := make([]byte, 2*len(units))
	for i, u := range units {
		if bigEndian {
			binary.BigEndian.PutUint16(data[2*i:], u)
		} else {
			binary.LittleEndian.PutUint16(data[2*i:], u)
		}
	}
	return string(data)
}

// planAccepts is a case whose file pyship must read as pip or a platform would: the plan
// succeeds and shows what the file said.
func planAccepts(file, content, shown string) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		a := &hostileAttempt{
			spec:     hostileSpec{args: []string{"plan", s.stdlibRepo(t, map[string]string{file: content})}, deadline: 20 * time.Second, limitMemory: true},
			mustPass: true,
		}
		a.check = func(r *hostileResult, fail hostileFail) {
			if r.code == 0 && !strings.Contains(r.stdout+r.stderr, shown) {
				fail("unclear message", "the plan does not show %q from %s:\n%s", shown, file, r.stdout)
			}
		}
		return a
	}
}

func deadIndexCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	addr := closedPort(t)
	repo := s.stdlibRepo(t, map[string]string{"requirements.txt": "--index-url http://" + addr + "/simple\nflask==3.1.3\n"})
	return &hostileAttempt{
		spec:    hostileSpec{args: []string{"build", repo, "--oci-layout", filepath.Join(t.TempDir(), "oci")}, deadline: 3 * time.Minute},
		codes:   []int{exitBuild},
		mention: []string{addr, "requirements.txt", "index"},
	}
}

func dockerignoreStartCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	repo := s.stdlibRepo(t, map[string]string{".dockerignore": "server.py\n"})
	return &hostileAttempt{
		spec:    hostileSpec{args: []string{"build", repo, "--oci-layout", filepath.Join(t.TempDir(), "oci")}, deadline: 2 * time.Minute},
		codes:   []int{exitDetect, exitPlan, exitBuild},
		mention: []string{".dockerignore", "server.py"},
	}
}

func dotdotRequirementCase(t *testing.T, s *hostileSuite) *hostileAttempt {
	return planRefusal(s.stdlibRepo(t, map[string]string{"requirements.txt": "../pkg\n"}), "requirements.txt:1", "../pkg")
}

func leadingDashCase(inImage bool) func(*testing.T, *hostileSuite) *hostileAttempt {
	return func(t *testing.T, s *hostileSuite) *hostileAttempt {
		repo := fmt.Sprintf("%s/hostile/lead-%s-%d", s.reg, s.nonce, time.Now().UnixNano())
		var args []string
		if inImage {
			args = []string{"build", s.stdlibRepo(t), "--image", repo + ":-lead", "--push"}
		} else {
			args = []string{"publish", s.stdlibRepo(t), "--image", repo + ":v1", "--tag", "-lead", "--skip-test"}
		}
		return &hostileAttempt{
			spec:    hostileSpec{args: args, deadline: 15 * time.Second},
			codes:   []int{exitUsage},
			mention: []string{"-lead"},
			check: func(r *hostileResult, fail hostileFail) {
				if tagExists(repo + ":v1") {
					fail("went to the network", "%s:v1 was pushed before the bad tag was noticed", repo)
				}
			},
		}
	}
}
