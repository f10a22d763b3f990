package pyindex

import (
	"os"
	"path/filepath"
	"strings"
)

// HostIndexes are the package indexes pip on this machine uses, in the order pyship asks
// them: the index (PIP_INDEX_URL, else pip.conf's index-url, else PyPI), then the extra
// indexes (PIP_EXTRA_INDEX_URL and pip.conf's extra-index-url).
func HostIndexes() []string {
	var conf pipConf
	if p := HostPipConf(); p != "" {
		if data, err := os.ReadFile(p); err == nil {
			conf = parsePipConf(string(data))
		}
	}
	index := DefaultIndex
	switch {
	case os.Getenv("PIP_INDEX_URL") != "":
		index = os.Getenv("PIP_INDEX_URL")
	case conf.index != "":
		index = conf.index
	}
	out := []string{index}
	out = append(out, strings.Fields(os.Getenv("PIP_EXTRA_INDEX_URL"))...)
	return append(out, conf.extra...)
}

// HostPipConf finds the pip configuration file pip on the host would use.
func HostPipConf() string {
	candidates := []string{os.Getenv("PIP_CONFIG_FILE")}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		candidates = append(candidates, filepath.Join(x, "pip", "pip.conf"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".config", "pip", "pip.conf"), filepath.Join(home, ".pip", "pip.conf"))
	}
	candidates = append(candidates, "/etc/pip.conf", "/etc/xdg/pip/pip.conf")
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// HostCABundle finds the CA bundle pip on the host would use, which may hold a company's
// TLS-intercepting CA.
func HostCABundle() string {
	for _, p := range []string{
		os.Getenv("PIP_CERT"), os.Getenv("SSL_CERT_FILE"),
		"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
	} {
		if p == "" {
			continue
		}
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

type pipConf struct {
	index string
	extra []string
}

// parsePipConf finds index-url and extra-index-url in a pip.conf. Values may go on over
// indented lines, as in any INI file.
func parsePipConf(text string) pipConf {
	var c pipConf
	key := ""
	add := func(v string) {
		switch key {
		case "index-url", "index_url":
			if f := strings.Fields(v); len(f) > 0 && c.index == "" {
				c.index = f[0]
			}
		case "extra-index-url", "extra_index_url":
			c.extra = append(c.extra, strings.Fields(v)...)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") || strings.HasPrefix(strings.TrimSpace(line), ";") {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			add(line)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			key = ""
			continue
		}
		key = strings.TrimSpace(k)
		add(v)
	}
	return c
}

// PipConfIndexes are every index URL a pip.conf names.
func PipConfIndexes(text string) []string {
	c := parsePipConf(text)
	if c.index == "" {
		return c.extra
	}
	return append([]string{c.index}, c.extra...)
}
