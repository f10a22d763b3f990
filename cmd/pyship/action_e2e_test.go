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

	"github.com/pyship/pyship/fixtures"
)

// parseYAML reads the block-style YAML subset action.yml is written in: mappings,
// sequences of mappings, plain and quoted scalars, and literal blocks (|).
func parseYAML(src string) (any, error) {
	type line struct {
		indent int
		text   string
	}
	var lines []line
	for _, raw := range strings.Split(src, "\n") {
		trimmed := strings.TrimLeft(raw, " ")
		lines = append(lines, line{len(raw) - len(trimmed), strings.TrimRight(trimmed, " ")})
	}
	pos := 0
	skip := func() {
		for pos < len(lines) && (lines[pos].text == "" || strings.HasPrefix(lines[pos].text, "#")) {
			pos++
		}
	}
	unquote := func(s string) string {
		if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
			return s[1 : len(s)-1]
		}
		return s
	}
	var block func(indent int) (any, error)
	// value reads what follows "key:" on a line at indent.
	value := func(rest string, indent int) (any, error) {
		switch {
		case rest == "|":
			var body []string
			base := -1
			for pos < len(lines) && (lines[pos].text == "" || lines[pos].indent > indent) {
				if lines[pos].text != "" && base < 0 {
					base = lines[pos].indent
				}
				if lines[pos].text == "" {
					body = append(body, "")
				} else {
					body = append(body, strings.Repeat(" ", lines[pos].indent-base)+lines[pos].text)
				}
				pos++
			}
			return strings.TrimRight(strings.Join(body, "\n"), "\n") + "\n", nil
		case rest == "":
			skip()
			if pos < len(lines) && lines[pos].indent > indent {
				return block(lines[pos].indent)
			}
			return "", nil
		default:
			return unquote(rest), nil
		}
	}
	block = func(indent int) (any, error) {
		skip()
		if pos < len(lines) && strings.HasPrefix(lines[pos].text, "- ") {
			var seq []any
			for skip(); pos < len(lines) && lines[pos].indent == indent && strings.HasPrefix(lines[pos].text, "- "); skip() {
				// "- key: value" starts a mapping two columns in.
				lines[pos] = line{indent + 2, strings.TrimPrefix(lines[pos].text, "- ")}
				item, err := block(indent + 2)
				if err != nil {
					return nil, err
				}
				seq = append(seq, item)
			}
			return seq, nil
		}
		m := map[string]any{}
		for skip(); pos < len(lines) && lines[pos].indent == indent; skip() {
			key, rest, ok := strings.Cut(lines[pos].text, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not key: value", pos+1, lines[pos].text)
			}
			pos++
			v, err := value(strings.TrimSpace(rest), indent)
			if err != nil {
				return nil, err
			}
			m[strings.TrimSpace(key)] = v
		}
		if pos < len(lines) && lines[pos].indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", pos+1)
		}
		return m, nil
	}
	return block(0)
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
	doc, err := parseYAML(string(mustRead(t, filepath.Join(repo, "action.yml"))))
	if err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	action := doc.(map[string]any)
	inputs := map[string]string{}
	for name, spec := range action["inputs"].(map[string]any) {
		s := spec.(map[string]any)
		def, _ := s["default"].(string)
		if v, ok := with[name]; ok {
			def = v
		} else if s["required"] == "true" {
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
	runs := action["runs"].(map[string]any)
	if runs["using"] != "composite" {
		t.Fatalf("runs.using is %v", runs["using"])
	}
	for i, st := range runs["steps"].([]any) {
		step := st.(map[string]any)
		if cond, ok := step["if"].(string); ok {
			m := condition.FindStringSubmatch(cond)
			if m == nil {
				t.Fatalf("step %d: condition %q is not one the harness knows", i, cond)
			}
			if inputs[m[1]] != m[2] {
				continue
			}
		}
		if uses, ok := step["uses"]; ok {
			t.Fatalf("step %d uses %v, which cannot run here; its condition must let it be skipped", i, uses)
		}
		outputFile := filepath.Join(runnerTemp, fmt.Sprintf("output-%d", i))
		summaryFile := filepath.Join(runnerTemp, fmt.Sprintf("summary-%d", i))
		for _, f := range []string{outputFile, summaryFile} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"].(string))
		cmd.Dir = workspace
		cmd.Env = append(append(os.Environ(), env...),
			"GITHUB_ACTIONS=true", "GITHUB_WORKSPACE="+workspace, "GITHUB_ACTION_PATH="+repo, "RUNNER_TEMP="+runnerTemp,
			"GITHUB_OUTPUT="+outputFile, "GITHUB_STEP_SUMMARY="+summaryFile)
		// As the runner does for actions, each input is also in INPUT_<NAME>.
		for name, v := range inputs {
			cmd.Env = append(cmd.Env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_"))+"="+v)
		}
		if e, ok := step["env"].(map[string]any); ok {
			for k, v := range e {
				cmd.Env = append(cmd.Env, k+"="+eval(v.(string)))
			}
		}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		run.stderr += stderr.String()
		run.summary += string(mustRead(t, summaryFile))
		if id, ok := step["id"].(string); ok {
			steps[id] = map[string]string{}
			for _, line := range strings.Split(string(mustRead(t, outputFile)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					steps[id][k] = v
				}
			}
		}
		if err != nil {
			run.code = cmd.ProcessState.ExitCode()
			t.Logf("step %d (%v) failed with %d:\n%s", i, step["name"], run.code, stderr.String())
			return run
		}
	}
	for name, spec := range action["outputs"].(map[string]any) {
		run.outputs[name] = eval(spec.(map[string]any)["value"].(string))
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
