package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// Smoke boots spec, waits for it to listen on spec.Port, asks it for check.Path, and gives
// a verdict. Whatever happens, the sandbox is stopped and removed before it returns. An
// error means the test could not be run at all.
func Smoke(ctx context.Context, spec BootSpec, check Check) (*Report, error) {
	if check.Timeout <= 0 {
		check.Timeout = 30 * time.Second
	}
	if check.Grace <= 0 {
		check.Grace = 5 * time.Second
	}
	if check.Path == "" {
		check.Path = "/"
	}
	if spec.Limits == (Limits{}) {
		spec.Limits = DefaultLimits
	}
	start := time.Now()
	p, err := Boot(ctx, spec)
	if err != nil {
		return nil, err
	}
	r := &Report{Port: spec.Port, HostPort: p.HostPort(), Limits: spec.Limits}
	defer func() {
		p.Stop(check.Grace)
		r.Teardown, r.Killed = p.Stopped()
		r.Usage = p.Usage()
		r.Output = p.Output(outputLines)
		if r.Failure == FailExited || r.Failure == FailStatus && r.Status >= 500 {
			// The app's own traceback says why it ended, or why it answered an error.
			if e := lastException(r.Output); e != "" {
				r.Reason += ": " + e
				if name := missingEnv(e); name != "" {
					r.Reason += envHint(e, name)
				}
			}
		}
		if r.Failure == FailExited && r.Usage.OOMKills > 0 {
			r.Failure = FailOutOfMemory
			r.Reason = fmt.Sprintf("killed for using more than its %d MiB of memory (%s)", spec.Limits.Memory>>20, r.Reason)
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", p.HostPort(), check.Path)
	deadline := time.NewTimer(check.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.Done():
			code := p.ExitCode()
			r.fail(FailExited, fmt.Sprintf("the app exited with code %d before answering", code))
			r.ExitCode = &code
			return r, nil
		case <-deadline.C:
			r.Listening = p.Listening()
			switch {
			case slices.Contains(r.Listening, spec.Port):
				r.fail(FailDeadline, fmt.Sprintf("the app listens on port %d but did not answer GET %s within %s", spec.Port, check.Path, check.Timeout))
			case len(r.Listening) > 0:
				r.fail(FailWrongPort, fmt.Sprintf("the app listens on port %s, not on port %d ($PORT): make it listen on $PORT", joinPorts(r.Listening), spec.Port))
			default:
				r.fail(FailNotListening, fmt.Sprintf("the app never listened on port %d within %s", spec.Port, check.Timeout))
			}
			return r, nil
		case <-tick.C:
			if !slices.Contains(p.Listening(), spec.Port) {
				continue
			}
			resp, err := client.Get(url)
			if err != nil {
				continue // listening but not ready to answer yet
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			r.FirstResponse = time.Since(start)
			r.Status = resp.StatusCode
			r.Listening = p.Listening()
			r.judge(check, resp, string(body))
			return r, nil
		}
	}
}
