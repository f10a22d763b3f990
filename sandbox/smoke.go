package sandbox

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Check is what a smoke test asks of the app.
type Check struct {
	// Path is requested with GET once the app listens.
	Path string `json:"path"`
	// Status is the status expected; 0 accepts any status below 500.
	Status int `json:"status,omitempty"`
	// Body, when set, must appear in the response body.
	Body string `json:"body,omitempty"`
	// Headers must be in the response, with these values.
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout is how long the app has to answer, from its start.
	Timeout time.Duration `json:"timeout"`
	// Grace is how long the app has to exit after SIGTERM before it is killed.
	Grace time.Duration `json:"grace"`
}

// Failure kinds of a smoke test.
const (
	FailExited       = "exited"
	FailOutOfMemory  = "out-of-memory"
	FailNotListening = "not-listening"
	FailWrongPort    = "wrong-port"
	FailStatus       = "status"
	FailBody         = "body"
	FailHeader       = "header"
	FailDeadline     = "deadline"
)

// Report is a smoke test's verdict and what was measured.
type Report struct {
	// Verdict is "pass" or "fail".
	Verdict string `json:"verdict"`
	// Failure is one of the Fail kinds; Reason says it in words.
	Failure string `json:"failure,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Port    int    `json:"port"`
	// HostPort is the loopback port it was published on.
	HostPort int `json:"host_port"`
	// Status is the HTTP status of the answer, if there was one.
	Status int `json:"status,omitempty"`
	// FirstResponse is the time from start to the first HTTP answer.
	FirstResponse time.Duration `json:"time_to_first_response_ns,omitempty"`
	// ExitCode is set when the app exited.
	ExitCode *int `json:"exit_code,omitempty"`
	// Listening are the ports the app listened on when the test ended.
	Listening []int  `json:"listening,omitempty"`
	Usage     Usage  `json:"usage"`
	Limits    Limits `json:"limits"`
	// Teardown is how long stopping and removing the sandbox took; Killed is true when the
	// app ignored SIGTERM for the whole grace period.
	Teardown time.Duration `json:"teardown_ns"`
	Killed   bool          `json:"killed,omitempty"`
	// Output is the last lines the app printed.
	Output []string `json:"output"`
}

// Passed reports whether the verdict is pass.
func (r *Report) Passed() bool { return r.Verdict == "pass" }

// outputLines is how much of the app's output a report keeps.
const outputLines = 50

// judge decides the verdict on the app's first answer.
func (r *Report) judge(check Check, resp *http.Response, body string) {
	switch {
	case check.Status == 0 && resp.StatusCode >= 500:
		r.fail(FailStatus, fmt.Sprintf("GET %s answered %d, a server error", check.Path, resp.StatusCode))
	case check.Status != 0 && resp.StatusCode != check.Status:
		r.fail(FailStatus, fmt.Sprintf("GET %s answered %d, want %d", check.Path, resp.StatusCode, check.Status))
	case check.Body != "" && !strings.Contains(body, check.Body):
		r.fail(FailBody, fmt.Sprintf("GET %s answered without %q in its body", check.Path, check.Body))
	default:
		for k, v := range check.Headers {
			if got := resp.Header.Get(k); got != v {
				r.fail(FailHeader, fmt.Sprintf("GET %s answered with %s: %q, want %q", check.Path, k, got, v))
				return
			}
		}
		r.Verdict = "pass"
	}
}

func (r *Report) fail(kind, reason string) {
	r.Verdict, r.Failure, r.Reason = "fail", kind, reason
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

var (
	// exceptionRe is the line that ends a Python traceback: the exception (its name maybe
	// qualified) and its message.
	exceptionRe = regexp.MustCompile(`^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?::.*)?$`)
	// endsTracebackRe is an exception line that can be told without its traceback's
	// header: a qualified or plain name ending in Error or Exception, and a message.
	endsTracebackRe = regexp.MustCompile(`^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Configured): `)
	// frameRe is a traceback's frame line.
	frameRe = regexp.MustCompile(`^\s*File "([^"]+)", line (\d+)`)
)

// lastException finds, in an app's last output lines, the exception of the last Python
// traceback and the frame that raised it ("AttributeError: ... (raised at /app/x.py:22)"),
// or "".
func lastException(lines []string) string {
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "Traceback (most recent call last)") {
			start = i
			break
		}
	}
	if start < 0 {
		// A traceback longer than the lines kept: its last exception line, at the
		// margin, names the error all the same.
		for i := len(lines) - 1; i >= 0 && i >= len(lines)-40; i-- {
			l := lines[i]
			if l == "" || l[0] == ' ' || l[0] == '\t' || !endsTracebackRe.MatchString(l) {
				continue
			}
			for j := i - 1; j >= 0 && j >= i-10; j-- {
				if m := frameRe.FindStringSubmatch(lines[j]); m != nil {
					return fmt.Sprintf("%s (raised at %s:%s)", clipLine(l), m[1], m[2])
				}
			}
			return clipLine(l)
		}
		return ""
	}
	frame := ""
	for _, line := range lines[start+1:] {
		if m := frameRe.FindStringSubmatch(line); m != nil {
			frame = m[1] + ":" + m[2]
			continue
		}
		if line == "" || line[0] == ' ' || line[0] == '\t' || !exceptionRe.MatchString(line) {
			continue
		}
		if frame != "" {
			return fmt.Sprintf("%s (raised at %s)", clipLine(line), frame)
		}
		return clipLine(line)
	}
	return ""
}

// missingEnvRes find, in the exception an app ended with, the environment variable it
// could not do without: os.environ["X"], python-decouple, environs, Django's settings,
// and apps' own messages.
var missingEnvRes = []*regexp.Regexp{
	regexp.MustCompile(`^KeyError: '([A-Z][A-Z0-9_]*)'`),
	regexp.MustCompile(`UndefinedValueError: ([A-Za-z_][A-Za-z0-9_]*) not found`),
	regexp.MustCompile(`EnvError: Environment variable "([A-Za-z_][A-Za-z0-9_]*)" not set`),
	regexp.MustCompile(`(?i)\b([A-Z][A-Z0-9_]*[A-Z0-9]) environment variable (?:is )?(?:not (?:defined|set|found)|missing|required)`),
	regexp.MustCompile(`(?i)environment variable '?"?([A-Z][A-Z0-9_]*[A-Z0-9])'?"? (?:is )?(?:not (?:defined|set|found)|missing|required)`),
	regexp.MustCompile(`\b([A-Z][A-Z0-9_]*[A-Z0-9]) (?:is )?not (?:found|set|defined|provided) in (?:the |your )?env`),
}

// emptySettingRe is Django's word for a setting the settings left empty: they read it,
// most often, from an environment variable whose name only they know.
var emptySettingRe = regexp.MustCompile(`ImproperlyConfigured: The ([A-Z][A-Z0-9_]*) setting must not be empty`)

// missingEnv returns the environment variable the exception says the app lacks, or "".
func missingEnv(exception string) string {
	if m := emptySettingRe.FindStringSubmatch(exception); m != nil {
		return m[1]
	}
	for _, re := range missingEnvRes {
		if m := re.FindStringSubmatch(exception); m != nil {
			return m[1]
		}
	}
	return ""
}

// envHint says how to give an app the variable it lacks, or, for a Django setting left
// empty, the variable its settings read it from.
func envHint(exception, name string) string {
	if emptySettingRe.MatchString(exception) {
		return fmt.Sprintf("; the settings leave %s empty: they read it from an environment variable the image does not set (the line %s = os.environ.get(\"NAME\") or env(\"NAME\") in the settings names it, often %s itself): give it to the smoke test with --env NAME=VALUE (and to the container when it runs)", name, name, name)
	}
	return fmt.Sprintf("; the app needs the environment variable %s, which the image does not set: give it to the smoke test with --env %s=VALUE (and to the container when it runs), or set it in [env] of pyship.toml if it is no secret", name, name)
}

func clipLine(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
