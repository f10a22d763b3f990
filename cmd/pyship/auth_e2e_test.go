//go:build linux && e2e

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
)

// secureRegistry is a distribution registry of the test's own, with TLS from a CA the test
// made and htpasswd authentication.
type secureRegistry struct {
	addr, user, password, caFile string
}

func startSecureRegistry(t *testing.T) *secureRegistry {
	t.Helper()
	_, err := exec.LookPath("htpasswd")
	fixtures.Need(t, err == nil, "htpasswd is not installed: run fixtures/testbed/up")
	dir := t.TempDir()
	r := &secureRegistry{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), user: "pyship-ci", password: "Tr1cky-s3cret-" + uniqueTag()}

	// A CA, and a certificate for 127.0.0.1 signed by it.
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pyship test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	r.caFile = filepath.Join(dir, "ca.pem")
	writePEM(t, r.caFile, "CERTIFICATE", caDER)
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, "key.pem"), "EC PRIVATE KEY", keyDER)

	out, err := exec.Command("htpasswd", "-Bbn", r.user, r.password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %[1]s/storage
http:
  addr: %[2]s
  tls:
    certificate: %[1]s/cert.pem
    key: %[1]s/key.pem
auth:
  htpasswd:
    realm: pyship-test
    path: %[1]s/htpasswd
`, dir, r.addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitFor(t, func() bool {
		resp, err := client.Get("https://" + r.addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	}, 15*time.Second)
	return r
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPublishWithAuthAndTLS publishes to a registry with TLS and htpasswd: with a Docker
// config file, with --password-stdin, with SSL_CERT_FILE; and fails cleanly with a wrong
// password. The password never shows in pyship's output.
func TestPublishWithAuthAndTLS(t *testing.T) {
	fixtures.Testbed(t)
	r := startSecureRegistry(t)
	src := copyFixture(t, "flask-hello")
	cache := t.TempDir()
	dockerConfig := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.password))
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(`{"auths": {"`+r.addr+`": {"auth": "`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	keychain := authn.NewMultiKeychain(staticAuth{r.user, r.password})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, r.caFile))
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}

	for _, tc := range []struct {
		name  string
		env   []string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{name: "docker config", env: []string{"DOCKER_CONFIG=" + dockerConfig}, args: []string{"--registry-ca", r.caFile}},
		{name: "password on stdin", stdin: r.password + "\n", args: []string{"--username", r.user, "--password-stdin", "--registry-ca", r.caFile}},
		{name: "SSL_CERT_FILE", env: []string{"DOCKER_CONFIG=" + dockerConfig, "SSL_CERT_FILE=" + r.caFile}},
		{name: "wrong password", stdin: "not-" + r.password + "\n", args: []string{"--username", r.user, "--password-stdin", "--registry-ca", r.caFile},
			code: exitPublish, want: "UNAUTHORIZED"},
		{name: "unknown CA", env: []string{"DOCKER_CONFIG=" + dockerConfig}, code: exitPublish, want: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := r.addr + "/e2e/auth-" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"publish", src, "--image", repo + ":v1", "--skip-test"}, tc.args...)
			res := pyshipIn(t, tc.stdin, append([]string{"PYSHIP_CACHE_DIR=" + cache}, tc.env...), args...)
			if strings.Contains(res.stdout+res.stderr, r.password) {
				t.Errorf("the password shows in pyship's output")
			}
			if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", res.code, tc.code, tc.want, res.stderr)
			}
			if tc.code != 0 {
				return
			}
			d := builtDigest(t, res)
			ref, err := name.ParseReference(repo + ":v1")
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(ref, remote.WithAuthFromKeychain(keychain), remote.WithTransport(transport))
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != d {
				t.Errorf("the registry has %s, pyship printed %s", desc.Digest, d)
			}
		})
	}
}

type staticAuth struct{ user, password string }

func (s staticAuth) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: s.user, Password: s.password}, nil
}
