//go:build linux && e2e

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"

	"github.com/pyship/pyship/fixtures"
)

// actionFile is action.yml as the harness reads it. Unknown keys are an error, so that a
// key added to action.yml that the harness would not honour (a step's working-directory,
// say) fails here rather than being ignored.
type actionFile struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Author      string            `yaml:"author"`
	Branding    map[string]string `yaml:"branding"`
	Inputs      map[string]struct {
		Description string `yaml:"description"`
		Required    bool   `yaml:"required"`
		Default     string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	With  map[string]string `yaml:"with"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	Run   string            `yaml:"run"`
}

// readAction decodes action.yml at the top of the repository.
func readAction(t *testing.T, repo string) actionFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, filepath.Join(repo, "action.yml"))))
	dec.KnownFields(true)
	var action actionFile
	if err := dec.Decode(&action); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return action
}

// TestActionFile checks what runAction and GitHub's runner rely on in action.yml, without
// running it: a composite action whose steps run bash or are skippable uses of other
// actions, inputs that are required or have a default, and outputs that come from steps.
func TestActionFile(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	action := readAction(t, repo)
	if action.Name == "" || action.Description == "" {
		t.Errorf("action.yml needs a name and a description for the Marketplace: %+v", action)
	}
	if action.Runs.Using != "composite" {
		t.Errorf("runs.using is %q, want composite", action.Runs.Using)
	}
	if !action.Inputs["image"].Required {
		t.Errorf("input image is not required")
	}
	for name, in := range action.Inputs {
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if in.Required && in.Default != "" {
			t.Errorf("input %s is required and has a default %q", name, in.Default)
		}
	}
	ids := map[string]bool{}
	for i, st := range action.Runs.Steps {
		switch {
		case st.Uses != "" && st.Run != "":
			t.Errorf("step %d (%s) both uses an action and runs a script", i, st.Name)
		case st.Uses != "" && st.If == "":
			t.Errorf("step %d (%s) uses %s unconditionally: the harness cannot skip it", i, st.Name, st.Uses)
		case st.Run != "" && st.Shell != "bash":
			t.Errorf("step %d (%s) runs in shell %q; a composite action's run step needs shell: bash", i, st.Name, st.Shell)
		case st.Uses == "" && st.Run == "":
			t.Errorf("step %d (%s) neither uses an action nor runs a script", i, st.Name)
		}
		if st.ID != "" {
			ids[st.ID] = true
		}
	}
	for _, want := range []string{"image", "digest", "tags"} {
		out, ok := action.Outputs[want]
		if !ok {
			t.Errorf("no output %s", want)
			continue
		}
		m := regexp.MustCompile(`^\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}$`).FindStringSubmatch(out.Value)
		if m == nil || !ids[m[1]] {
			t.Errorf("output %s is %q, not a step's output", want, out.Value)
		}
	}
}

var exprRe = regexp.MustCompile(`\$\{\{\s*([^}]+?)\s*\}\}`)

// actionRun runs action.yml's steps the way GitHub's runner runs a composite action:
// inputs with their defaults, ${{ }} expressions, a step's if, its env, GITHUB_OUTPUT
// and GITHUB_STEP_SUMMARY files, and the action's outputs from its steps' outputs.
type actionRun struct {
	outputs map[string]string
	summary string
	stderr  string
	code    int
}

func runAction(t *testing.T, workspace string, with map[string]string, env []string) actionRun {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	action := readAction(t, repo)
	inputs := map[string]string{}
	for name, spec := range action.Inputs {
		def := spec.Default
		if v, ok := with[name]; ok {
			def = v
		} else if spec.Required {
			t.Fatalf("required input %s not given", name)
		}
		inputs[name] = def
	}
	for name := range with {
		if _, ok := inputs[name]; !ok {
			t.Fatalf("action.yml has no input %q", name)
		}
	}
	runnerTemp := t.TempDir()
	steps := map[string]map[string]string{}
	eval := func(s string) string {
		return exprRe.ReplaceAllStringFunc(s, func(m string) string {
			expr := exprRe.FindStringSubmatch(m)[1]
			switch parts := strings.Split(expr, "."); {
			case parts[0] == "inputs":
				return inputs[parts[1]]
			case expr == "github.action_path":
				return repo
			case parts[0] == "steps" && len(parts) == 4 && parts[2] == "outputs":
				return steps[parts[1]][parts[3]]
			}
			t.Fatalf("expression %q is not one the harness knows", expr)
			return ""
		})
	}
	condition := regexp.MustCompile(`^inputs\.([\w-]+) == '([^']*)'$`)
	run := actionRun{outputs: map[string]string{}}
	if action.Runs.Using != "composite" {
		t.Fatalf("runs.using is %v", action.Runs.Using)
	}
	for i, step := range action.Runs.Steps {
		if cond := step.If; cond != "" {
			m := condition.FindStringSubmatch(cond)
			if m == nil {
				t.Fatalf("step %d: condition %q is not one the harness knows", i, cond)
			}
			if inputs[m[1]] != m[2] {
				continue
			}
		}
		if step.Uses != "" {
			t.Fatalf("step %d uses %v, which cannot run here; its condition must let it be skipped", i, step.Uses)
		}
		outputFile := filepath.Join(runnerTemp, fmt.Sprintf("output-%d", i))
		summaryFile := filepath.Join(runnerTemp, fmt.Sprintf("summary-%d", i))
		for _, f := range []string{outputFile, summaryFile} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.Run)
		cmd.Dir = workspace
		cmd.Env = append(append(os.Environ(), env...),
			"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE="+workspace, "GITHUB_ACTION_PATH="+repo, "RUNNER_TEMP="+runnerTemp,
			"GITHUB_OUTPUT="+outputFile, "GITHUB_STEP_SUMMARY="+summaryFile)
		// As the runner does for actions, each input is also in INPUT_<NAME>.
		for name, v := range inputs {
			cmd.Env = append(cmd.Env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_"))+"="+v)
		}
		for k, v := range step.Env {
			cmd.Env = append(cmd.Env, k+"="+eval(v))
		}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		run.stderr += stderr.String()
		run.summary += string(mustRead(t, summaryFile))
		if id := step.ID; id != "" {
			steps[id] = map[string]string{}
			for _, line := range strings.Split(string(mustRead(t, outputFile)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					steps[id][k] = v
				}
			}
		}
		if err != nil {
			run.code = cmd.ProcessState.ExitCode()
			t.Logf("step %d (%v) failed with %d:\n%s", i, step.Name, run.code, stderr.String())
			return run
		}
	}
	for name, spec := range action.Outputs {
		run.outputs[name] = eval(spec.Value)
	}
	return run
}

// TestAction runs action.yml against the test bed: outputs, tags, the job summary, and
// an annotation that points at the file at fault when the repository is wrong.
func TestAction(t *testing.T) {
	reg := fixtures.Testbed(t)
	workspace := t.TempDir()
	app := filepath.Join(workspace, "services", "web")
	if err := os.CopyFS(app, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
		t.Fatal(err)
	}
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir(), "GITHUB_SHA=0123456789abcdef0123", "GITHUB_REF_NAME=feature/login", "GITHUB_EVENT_NAME=push"}
	repo := reg + "/e2e/action-" + uniqueTag()
	run := runAction(t, workspace, map[string]string{
		"path": "services/web", "image": repo + ":v1", "tags": "extra, more", "setup-go": "false", "base-mirror": reg,
	}, env)
	if run.code != 0 {
		t.Fatalf("the action failed with %d", run.code)
	}
	image, digest := run.outputs["image"], run.outputs["digest"]
	if !strings.HasPrefix(image, repo+"@sha256:") || !strings.HasSuffix(image, digest) || !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("outputs image %q digest %q", image, digest)
	}
	if want := "v1,extra,more,sha-0123456,feature-login"; run.outputs["tags"] != want {
		t.Errorf("output tags %q, want %q", run.outputs["tags"], want)
	}
	for _, tag := range strings.Split(run.outputs["tags"], ",") {
		ref, err := name.ParseReference(repo + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if desc, err := remote.Head(ref); err != nil || desc.Digest.String() != digest {
			t.Errorf("%s: %v %v, want %s", ref, desc, err, digest)
		}
	}
	for _, want := range []string{"## pyship", "Pushed **`" + image + "`**", "Smoke test: **passed**", "| start | `python app.py` | app.py:", "Image size:", "pip install"} {
		if !strings.Contains(run.summary, want) {
			t.Errorf("the job summary lacks %q:\n%s", want, run.summary)
		}
	}
	if !strings.Contains(run.stderr, "::group::pyship publish") || !strings.Contains(run.stderr, "::endgroup::") {
		t.Errorf("the logs are not folded into a group")
	}

	// A repository mistake fails the step with an annotation on the file and line.
	if err := os.WriteFile(filepath.Join(app, "Procfile"), []byte("web: python app.py\nweb: gunicorn app:app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run = runAction(t, workspace, map[string]string{"path": "services/web", "image": repo + ":v2", "setup-go": "false"}, env)
	if run.code != exitDetect {
		t.Errorf("the action exited %d, want %d", run.code, exitDetect)
	}
	if want := "::error file=services/web/Procfile,line=2,title=pyship::Procfile:2: a second web process"; !strings.Contains(run.stderr, want) {
		t.Errorf("no annotation %q in:\n%s", want, run.stderr)
	}
}
