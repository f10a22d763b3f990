package sandbox

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// egressAddr is where a build sandbox finds pyship's proxy, on its own loopback.
const egressAddr = "127.0.0.1:3128"

// proxyVars are the variables programs read a proxy from; the sandbox's own replace any
// the environment had, and nothing bypasses it.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"}

// withProxy points env's proxy variables at pyship's proxy.
func withProxy(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, v := range proxyVars {
			drop = drop || name == v
		}
		if !drop {
			out = append(out, kv)
		}
	}
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		out = append(out, v+"=http://"+egressAddr)
	}
	return out
}

// egressBridge listens on the sandbox's loopback where the program finds its proxy, and
// returns the service that hands every connection to pyship, outside, over fdEgress. The
// connections stay sockets of the sandbox's network namespace; only pyship decides where
// they may lead.
func egressBridge() (func(), error) {
	l, err := net.Listen("tcp", egressAddr)
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy: %w", err)
	}
	sock := os.NewFile(fdEgress, "egress")
	return func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f, err := c.(*net.TCPConn).File()
			c.Close()
			if err != nil {
				continue
			}
			err = unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
			f.Close()
			if err != nil {
				return
			}
		}
	}, nil
}

// maxEgressConns is how many connections from one sandbox the proxy serves at once; more
// are closed: the proxy runs in pyship, outside the sandbox's cgroup.
const maxEgressConns = 64

// serveEgress takes the connections the sandbox's init hands over and serves each as an
// HTTP proxy under e's rules, until the sandbox is gone.
func serveEgress(sock *net.UnixConn, e *Egress) {
	defer sock.Close()
	p := newProxy(e)
	slots := make(chan struct{}, maxEgressConns)
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := sock.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			f := os.NewFile(uintptr(fd), "egress-connection")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				continue
			}
			select {
			case slots <- struct{}{}:
				go func() {
					defer func() { <-slots }()
					p.serve(c)
				}()
			default:
				c.Close()
			}
		}
	}
}

// proxy is the HTTP proxy a build sandbox reaches the network through.
type proxy struct {
	e *Egress
	// allow are the destinations the sandbox may reach although they are on this machine.
	allow map[string]bool
	// upstreams are the host's own proxies: pyship connects to them, the sandbox cannot.
	upstreams map[string]bool
	// proxyFor is the host's proxy for a request, if any: its environment's, as for
	// pyship's own traffic.
	proxyFor func(*http.Request) (*url.URL, error)
	dial     net.Dialer
	http     *http.Transport

	localOnce sync.Once
	local     map[string]bool
}

func newProxy(e *Egress) *proxy {
	p := &proxy{
		e: e, allow: map[string]bool{}, upstreams: map[string]bool{}, proxyFor: http.ProxyFromEnvironment,
		dial: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
	}
	for _, a := range e.Allow {
		p.allow[strings.ToLower(a)] = true
	}
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		if u := proxyURL(os.Getenv(v)); u != nil {
			p.upstreams[strings.ToLower(hostPort(u))] = true
		}
	}
	p.http = &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) { return p.proxyFor(r) },
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p.upstreams[strings.ToLower(addr)] {
				return p.dial.DialContext(ctx, network, addr)
			}
			return p.dialChecked(ctx, network, addr)
		},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       30 * time.Second,
	}
	return p
}

// proxyURL reads a proxy setting as Go's net/http does: a bare host:port means http.
func proxyURL(v string) *url.URL {
	if v == "" {
		return nil
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return nil
	}
	return u
}

// hostPort is u's host with its port, the scheme's default if it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// RefusedError says the proxy would not connect to a destination, and why.
type RefusedError struct {
	Dest   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("pyship's build sandbox may not connect to %s: it is %s; only the package index and the internet are reachable from a build (allow a package index on this machine by naming it in PIP_INDEX_URL or pip.conf)", e.Dest, e.Reason)
}

// refusedReason says why ip may not be reached from a build, or "".
func (p *proxy) refusedReason(ip net.IP) string {
	switch {
	case ip.To4() != nil && ip.To4()[0] == 0:
		return "an address of this network (0.0.0.0/8), which reaches this machine"
	case ip.IsLoopback():
		return "a loopback address of this machine"
	case ip.IsUnspecified():
		return "the unspecified address, which reaches this machine"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata services answer there)"
	case ip.IsMulticast():
		return "a multicast address"
	}
	p.localOnce.Do(func() {
		p.local = map[string]bool{}
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				p.local[n.IP.String()] = true
			}
		}
	})
	if p.local[ip.String()] {
		return "an address of this machine"
	}
	return ""
}

// check refuses a destination that leads to this machine, before any connection is made to
// it or to the host's proxy for it. A name is resolved here; when it cannot be and the host
// has a proxy, the proxy resolves it (behind a company proxy, the host often cannot), and
// only names that are this machine by definition are refused.
func (p *proxy) check(ctx context.Context, dest string, viaProxy bool) error {
	if p.allow[strings.ToLower(dest)] {
		return nil
	}
	host, _, err := net.SplitHostPort(dest)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil {
		if why := p.refusedReason(ip); why != "" {
			return &RefusedError{Dest: dest, Reason: why}
		}
		return nil
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return &RefusedError{Dest: dest, Reason: "this machine's own name"}
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		if viaProxy {
			return nil
		}
		return err
	}
	for _, ip := range ips {
		if why := p.refusedReason(ip.IP); why != "" {
			return &RefusedError{Dest: dest, Reason: why}
		}
	}
	return nil
}

// dialChecked connects to addr unless it leads to this machine: the name is resolved
// here and the connection goes to an address that was checked, so a name cannot change
// its answer in between.
func (p *proxy) dialChecked(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.allow[strings.ToLower(addr)] {
		return p.dial.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil {
		if why := p.refusedReason(ip); why != "" {
			return nil, &RefusedError{Dest: addr, Reason: why}
		}
		return p.dial.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	var last error
	for _, ip := range ips {
		if why := p.refusedReason(ip.IP); why != "" {
			last = &RefusedError{Dest: addr, Reason: why}
			continue
		}
		c, err := p.dial.DialContext(ctx, "tcp", net.JoinHostPort(ip.IP.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("%s has no address", host)
	}
	return nil, last
}

// maxRequestBytes bounds what one request, headers and body, may send to the proxy: pip
// and the builds it runs only fetch.
const maxRequestBytes = 1 << 20

// serve answers one client connection: CONNECT tunnels, and plain HTTP requests in
// absolute form.
func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	lr := &io.LimitedReader{R: c, N: maxRequestBytes}
	br := bufio.NewReader(lr)
	for {
		lr.N = maxRequestBytes
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		if req.Method == http.MethodConnect {
			p.tunnel(c, br, req.Host)
			return
		}
		if !p.forward(c, req) {
			return
		}
	}
}

func (p *proxy) refuse(c net.Conn, dest string, err error) {
	status := "502 Bad Gateway"
	var refused *RefusedError
	if errors.As(err, &refused) {
		status = "403 Forbidden"
		if p.e.Refused != nil {
			p.e.Refused(refused.Dest, refused.Reason)
		}
	}
	msg := err.Error() + "\n"
	fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(msg), msg)
}

// tunnel connects the client to dest, through the host's proxy if it has one for dest.
func (p *proxy) tunnel(c net.Conn, br *bufio.Reader, dest string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	up, err := p.connect(ctx, dest)
	cancel()
	if err != nil {
		p.refuse(c, dest, err)
		return
	}
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if n := br.Buffered(); n > 0 {
		head, _ := br.Peek(n)
		if _, err := up.Write(head); err != nil {
			return
		}
	}
	splice(idle{c}, idle{up})
}

// idleTimeout is how long a tunnel may carry nothing before the proxy closes it.
const idleTimeout = 5 * time.Minute

// idle is a connection that fails once it has been idle for idleTimeout.
type idle struct{ net.Conn }

func (c idle) Read(b []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Read(b)
}

func (c idle) Write(b []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Write(b)
}

func (c idle) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connect opens a stream to dest, directly or through the host's proxy.
func (p *proxy) connect(ctx context.Context, dest string) (net.Conn, error) {
	via, err := p.proxyFor(&http.Request{URL: &url.URL{Scheme: "https", Host: dest}})
	if err != nil || via == nil {
		return p.dialChecked(ctx, "tcp", dest)
	}
	if err := p.check(ctx, dest, true); err != nil {
		return nil, err
	}
	up, err := p.dial.DialContext(ctx, "tcp", hostPort(via))
	if err != nil {
		return nil, fmt.Errorf("connecting to the proxy %s: %w", via.Host, err)
	}
	req := "CONNECT " + dest + " HTTP/1.1\r\nHost: " + dest + "\r\n"
	if u := via.User; u != nil {
		pass, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)) + "\r\n"
	}
	_ = up.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(up, req+"\r\n"); err != nil {
		up.Close()
		return nil, err
	}
	br := bufio.NewReader(up)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		up.Close()
		return nil, fmt.Errorf("the proxy %s: %w", via.Host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		up.Close()
		return nil, fmt.Errorf("the proxy %s answered %s for %s", via.Host, resp.Status, dest)
	}
	_ = up.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		up.Close()
		return nil, fmt.Errorf("the proxy %s sent data before the tunnel was open", via.Host)
	}
	return up, nil
}

// forward makes one plain HTTP request for the client; it reports whether the connection
// can take another.
func (p *proxy) forward(c net.Conn, req *http.Request) bool {
	if req.URL.Host == "" {
		p.refuse(c, req.Host, errors.New("the proxy takes absolute URLs and CONNECT only"))
		return false
	}
	ctx, cancel := context.WithTimeout(req.Context(), time.Minute)
	err := p.check(ctx, hostPort(req.URL), true)
	cancel()
	if err != nil {
		p.refuse(c, req.URL.Host, err)
		return false
	}
	req.RequestURI = ""
	for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade"} {
		req.Header.Del(h)
	}
	resp, err := p.http.RoundTrip(req)
	if err != nil {
		p.refuse(c, req.URL.Host, err)
		return false
	}
	defer resp.Body.Close()
	if err := resp.Write(c); err != nil {
		return false
	}
	return !req.Close && !resp.Close
}
