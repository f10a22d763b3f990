package sandbox

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// proxyRequest sends raw to a proxy p serves on one end of a pipe and returns its answer.
func proxyRequest(t *testing.T, p *proxy, raw string) string {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	go p.serve(server)
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(client, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("reading the proxy's answer to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(body)
}

func TestProxyChecksBeforeTheHostsProxy(t *testing.T) {
	// The host's own proxy, on this machine as cntlm or squid would be.
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	p := newProxy(&Egress{})
	upstreamURL := &url.URL{Scheme: "http", Host: upstream.Addr().String()}
	p.upstreams[upstream.Addr().String()] = true
	p.proxyFor = func(*http.Request) (*url.URL, error) { return upstreamURL, nil }
	for _, dest := range []string{"127.0.0.1:22", "[::1]:22", "169.254.169.254:80", "0.0.0.0:22", "localhost:22", upstream.Addr().String()} {
		got := proxyRequest(t, p, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n")
		if !strings.HasPrefix(got, "403 ") {
			t.Errorf("CONNECT %s through the host's proxy: %q, want 403", dest, got)
		}
		got = proxyRequest(t, p, "GET http://"+dest+"/ HTTP/1.1\r\nHost: "+dest+"\r\n\r\n")
		if !strings.HasPrefix(got, "403 ") {
			t.Errorf("GET http://%s/ through the host's proxy: %q, want 403", dest, got)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the host's proxy was reached %d times for refused destinations", n)
	}
}

func TestProxyBoundsRequests(t *testing.T) {
	p := newProxy(&Egress{})
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan struct{})
	go func() {
		p.serve(server)
		close(done)
	}()
	// A request line without end: the proxy stops reading it at its limit.
	written := 0
	chunk := []byte(strings.Repeat("a", 64<<10))
	_ = client.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(client, "GET http://example.com/")
	for written < 64<<20 {
		n, err := client.Write(chunk)
		written += n
		if err != nil {
			break
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy kept reading an endless request")
	}
	if written > 2*maxRequestBytes {
		t.Errorf("the proxy read %d bytes of one request, want at most about %d", written, maxRequestBytes)
	}
}

func TestProxyURL(t *testing.T) {
	for raw, want := range map[string]string{
		"":                          "",
		"127.0.0.1:3128":            "127.0.0.1:3128",
		"http://proxy.corp:8080":    "proxy.corp:8080",
		"http://user:pw@proxy.corp": "proxy.corp:80",
	} {
		got := ""
		if u := proxyURL(raw); u != nil {
			got = hostPort(u)
		}
		if got != want {
			t.Errorf("proxyURL(%q): %q, want %q", raw, got, want)
		}
	}
}
