package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512m": 512 << 20, "1g": 1 << 30, "20000000": 20000000, "16m": 16 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1m", "1x", "1k", "m"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) gave no error", bad)
		}
	}
}

func TestEscapeAnnotation(t *testing.T) {
	if got := escapeData("50% done\nnext"); got != "50%25 done%0Anext" {
		t.Errorf("escapeData: %q", got)
	}
	if got := escapeProperty("a:b,c"); got != "a%3Ab%2Cc" {
		t.Errorf("escapeProperty: %q", got)
	}
}

func TestImageLabels(t *testing.T) {
	c := common{labels: stringList{"team=web", "org.opencontainers.image.licenses=MIT", "empty="}}
	got, err := c.imageLabels()
	if err != nil || len(got) != 3 || got["team"] != "web" || got["org.opencontainers.image.licenses"] != "MIT" || got["empty"] != "" {
		t.Errorf("imageLabels = %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=x", "org.opencontainers.image.base.digest=sha256:1"} {
		c := common{labels: stringList{bad}}
		if _, err := c.imageLabels(); err == nil {
			t.Errorf("--label %q was taken", bad)
		}
	}
}
