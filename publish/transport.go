package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"
)

// DefaultTimeout is how long a registry may keep pyship waiting with no progress: to
// connect, to take the next part of an upload, to answer, or to send the next part of a
// download. It bounds silence, not the length of a transfer, so big layers still push. A
// registry that commits a large upload may be silent for a while before it answers, so
// this is minutes, not seconds.
const DefaultTimeout = 2 * time.Minute

// TimeoutEnv is the environment variable that sets the timeout in pyship's commands.
const TimeoutEnv = "PYSHIP_REGISTRY_TIMEOUT"

// TransportOptions configure the transport to registries.
type TransportOptions struct {
	// CAFile is a PEM file of more certificates to trust, besides the system's
	// (SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	CAFile string
	// Timeout is how long a registry may keep a request waiting with no progress;
	// default DefaultTimeout.
	Timeout time.Duration
}

// NewTransport returns the HTTP transport for all traffic to registries: pushes, base
// pulls and image pulls. A request fails with a *StallError when the registry makes no
// progress for the timeout, in any phase: connecting, sending, waiting for the answer, or
// reading it. Time spent producing an upload's bytes or consuming a download's is not the
// registry's, and does not count. Give it to ggcr with remote.WithTransport, which adds
// its retries around it.
func NewTransport(opts TransportOptions) (http.RoundTripper, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	// The dial and handshake limits are backstops: the watchdog below ends both phases at
	// the same timeout, with a clearer error.
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: opts.Timeout + time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opts.Timeout + time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if opts.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the registry CA %q: %w", opts.CAFile, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%q holds no PEM certificate", opts.CAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &stallTransport{inner: t, limit: opts.Timeout}, nil
}

// StallError reports a registry that made no progress for the timeout.
type StallError struct {
	// Host is the registry's host and port (or the storage it redirected to).
	Host string
	// Phase is what pyship was waiting for: "connecting", "sending the request body",
	// "waiting for the response" or "reading the response body".
	Phase string
	// After is the timeout.
	After time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("registry %s did not answer within %s (stalled while %s); if it is only slow, set %s higher",
		e.Host, e.After, e.Phase, TimeoutEnv)
}

// Timeout reports that this is a timeout, as net.Error does. A stall is not Temporary:
// retrying it would multiply the wait.
func (e *StallError) Timeout() bool { return true }

type phase int

const (
	connecting phase = iota
	sending
	waiting
	reading
	finished
)

func (p phase) String() string {
	return [...]string{"connecting", "sending the request body", "waiting for the response", "reading the response body", "finished"}[p]
}

type stallTransport struct {
	inner http.RoundTripper
	limit time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{limit: t.limit, host: req.URL.Host, cancel: cancel}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectDone:          func(string, string, error) { w.progress(connecting) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { w.progress(connecting) },
		GotConn:              func(httptrace.GotConnInfo) { w.progress(sending) },
		WroteHeaders:         func() { w.progress(sending) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { w.progress(waiting) },
		GotFirstResponseByte: func() { w.progress(waiting) },
	})
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &requestBody{ReadCloser: req.Body, w: w}
		if get := req.GetBody; get != nil {
			out.GetBody = func() (io.ReadCloser, error) {
				b, err := get()
				if err != nil || b == nil || b == http.NoBody {
					return b, err
				}
				return &requestBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	w.start()
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		stall := w.stalled()
		w.finish()
		if stall != nil {
			return nil, stall
		}
		return nil, err
	}
	w.answered()
	resp.Body = &responseBody{ReadCloser: resp.Body, w: w}
	if resp.StatusCode >= 400 {
		// ggcr refuses an error body over 64 KiB and then loses the status: an error page
		// is cut short, so the message keeps the status and the start of the page.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxErrorBody), resp.Body}
		resp.ContentLength = -1
	}
	return resp, nil
}

// maxErrorBody is how much of a registry's error page pyship reads: less than the 64 KiB
// ggcr takes, so that the status survives; the message quotes a short excerpt of it.
const maxErrorBody = 60 << 10

// watchdog cancels a request that makes no progress for limit while armed. It is armed
// whenever pyship waits on the registry, and paused while pyship itself is busy.
type watchdog struct {
	limit  time.Duration
	host   string
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	timer   *time.Timer
	phase   phase
	armed   bool
	armedAt time.Time
	stall   *StallError
}

func (w *watchdog) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(w.limit, w.fire)
	w.armed, w.armedAt = true, time.Now()
}

// progress re-arms the timer, in phase p when the request has not gone past it.
func (w *watchdog) progress(p phase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase >= reading {
		return
	}
	w.phase = max(w.phase, p)
	if w.armed {
		w.rearm()
	}
}

func (w *watchdog) rearm() {
	w.armed, w.armedAt = true, time.Now()
	w.timer.Reset(w.limit)
}

// pauseSend and resumeSend bracket a read of the upload's body: producing it is not the
// registry's time.
func (w *watchdog) pauseSend() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase < reading {
		w.armed = false
		w.timer.Stop()
	}
}

func (w *watchdog) resumeSend() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase < reading && w.stall == nil {
		w.phase = max(w.phase, sending)
		w.rearm()
	}
}

// answered: the headers are in; from now on only reads of the body are timed.
func (w *watchdog) answered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.phase, w.armed = reading, false
	w.timer.Stop()
}

// readStart and readEnd bracket a read of the response body.
func (w *watchdog) readStart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase == reading && w.stall == nil {
		w.rearm()
	}
}

func (w *watchdog) readEnd() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	w.timer.Stop()
}

func (w *watchdog) finish() {
	w.mu.Lock()
	w.phase, w.armed = finished, false
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(nil)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	// A timer that fired while being stopped or reset must not count.
	if !w.armed || w.phase == finished || time.Since(w.armedAt) < w.limit {
		w.mu.Unlock()
		return
	}
	w.stall = &StallError{Host: w.host, Phase: w.phase.String(), After: w.limit}
	stall := w.stall
	w.mu.Unlock()
	w.cancel(stall)
}

func (w *watchdog) stalled() *StallError {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stall
}

type requestBody struct {
	io.ReadCloser
	w *watchdog
}

// Read implements io.Reader.
func (b *requestBody) Read(p []byte) (int, error) {
	b.w.pauseSend()
	defer b.w.resumeSend()
	return b.ReadCloser.Read(p)
}

type responseBody struct {
	io.ReadCloser
	w *watchdog
}

// Read implements io.Reader.
func (b *responseBody) Read(p []byte) (int, error) {
	b.w.readStart()
	n, err := b.ReadCloser.Read(p)
	b.w.readEnd()
	if err != nil && !errors.Is(err, io.EOF) {
		if stall := b.w.stalled(); stall != nil {
			return n, stall
		}
	}
	return n, err
}

// Close implements io.Closer.
func (b *responseBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.finish()
	return err
}
