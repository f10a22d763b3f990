package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// silentRegistry accepts connections and never answers: a registry that hangs. accepted is
// closed when the first connection comes in.
func silentRegistry(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(ch) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// hangingServer runs handler, and releases the handlers it holds when the test ends.
func hangingServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, hang <-chan struct{})) string {
	t.Helper()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r, hang) }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // runs first: Close waits for the handlers
	return strings.TrimPrefix(srv.URL, "http://")
}

// zeros is an endless upload body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func newTestTransport(t *testing.T, timeout time.Duration) http.RoundTripper {
	t.Helper()
	rt, err := NewTransport(TransportOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// roundTrip sends one request and reads the whole answer.
func roundTrip(ctx context.Context, rt http.RoundTripper, method, url string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func TestTransportStalls(t *testing.T) {
	const limit = 300 * time.Millisecond
	silent, _ := silentRegistry(t)
	midDownload := hangingServer(t, func(w http.ResponseWriter, r *http.Request, hang <-chan struct{}) {
		w.Header().Set("Content-Length", "1048576")
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		<-hang
	})
	midUpload := hangingServer(t, func(w http.ResponseWriter, r *http.Request, hang <-chan struct{}) {
		io.CopyN(io.Discard, r.Body, 1024)
		<-hang
	})
	for _, tc := range []struct {
		name, host, method string
		body               io.Reader
		phase              string
	}{
		{name: "registry accepts and never answers", host: silent, method: http.MethodGet, phase: "waiting for the response"},
		{name: "registry stops mid-download", host: midDownload, method: http.MethodGet, phase: "reading the response body"},
		{name: "registry stops reading an upload", host: midUpload, method: http.MethodPatch, body: io.LimitReader(zeros{}, 1<<30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newTestTransport(t, limit)
			start := time.Now()
			_, err := roundTrip(context.Background(), rt, tc.method, "http://"+tc.host+"/v2/", tc.body)
			took := time.Since(start)
			var stall *StallError
			if !errors.As(err, &stall) {
				t.Fatalf("got %v after %s, want a StallError", err, took)
			}
			if stall.Host != tc.host || stall.After != limit || (tc.phase != "" && stall.Phase != tc.phase) {
				t.Errorf("StallError %+v, want host %s, after %s, phase %q", stall, tc.host, limit, tc.phase)
			}
			for _, want := range []string{tc.host, "did not answer within 300ms", TimeoutEnv} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if took > 10*time.Second {
				t.Errorf("the stall was noticed after %s", took)
			}
		})
	}
}

// slowReader hands out its data in small parts, with a pause before each: a producer
// slower than the network, which is no fault of the registry.
type slowReader struct {
	left  int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := min(len(p), 1024, s.left)
	clear(p[:n])
	s.left -= n
	return n, nil
}

// TestTransportSlowButSteady: the deadline is on silence, not on the length of a transfer.
func TestTransportSlowButSteady(t *testing.T) {
	const limit = 300 * time.Millisecond
	trickle := hangingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		for range 8 {
			w.Write(bytes.Repeat([]byte("x"), 100))
			w.(http.Flusher).Flush()
			time.Sleep(limit / 2)
		}
	})
	sink := hangingServer(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strings.Repeat("y", int(n/1024)))
	})
	for _, tc := range []struct {
		name, host, method string
		body               io.Reader
		want               int
	}{
		{name: "download that trickles for longer than the limit", host: trickle, method: http.MethodGet, want: 800},
		{name: "upload from a producer slower than the limit", host: sink, method: http.MethodPut, body: &slowReader{left: 4 << 10, pause: 2 * limit}, want: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := roundTrip(context.Background(), newTestTransport(t, limit), tc.method, "http://"+tc.host+"/", tc.body)
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, tc.want)
			}
		})
	}
}

// TestTransportInterrupt: cancelling the context ends a stalled request at once, as an
// interruption, not a stall.
func TestTransportInterrupt(t *testing.T) {
	silent, accepted := silentRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-accepted
		cancel()
	}()
	start := time.Now()
	_, err := roundTrip(ctx, newTestTransport(t, time.Hour), http.MethodGet, "http://"+silent+"/v2/", nil)
	var stall *StallError
	if !errors.Is(err, context.Canceled) || errors.As(err, &stall) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop", took)
	}
}

func TestCheckTag(t *testing.T) {
	for _, tc := range []struct {
		name, tag string
		ok        bool
	}{
		{name: "version", tag: "v1.2.3", ok: true},
		{name: "underscore first", tag: "_build", ok: true},
		{name: "digit first", tag: "3.13-slim", ok: true},
		{name: "128 characters", tag: strings.Repeat("a", 128), ok: true},
		{name: "dash first", tag: "-lead"},
		{name: "dot first", tag: ".hidden"},
		{name: "empty", tag: ""},
		{name: "129 characters", tag: strings.Repeat("a", 129)},
		{name: "slash", tag: "feature/x"},
		{name: "colon", tag: "a:b"},
		{name: "non-ASCII", tag: "café"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTag(tc.tag)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckTag(%q) = %v, want ok %v", tc.tag, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
				t.Errorf("error %q does not give the rule", err)
			}
		})
	}
}

func TestTransportKeepsTheStatusOfAHugeErrorPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, strings.Repeat("<p>an error page</p>", 20000))
	}))
	defer srv.Close()
	tr, err := NewTransport(TransportOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(ref, remote.WithTransport(tr))
	if err == nil || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), "body exceeds") {
		t.Errorf("a 400 KB error page: %v; want the status 500", err)
	}
}
