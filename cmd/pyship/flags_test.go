package main

import (
	"strings"
	"testing"
)

func TestCITags(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not in actions", map[string]string{"GITHUB_ACTIONS": "", "GITHUB_SHA": "0123456789"}, ""},
		{"branch", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "0123456789", "GITHUB_REF_NAME": "feature/x", "GITHUB_EVENT_NAME": "push"}, "sha-0123456,feature-x"},
		{"version tag", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "abcdef0123", "GITHUB_REF_NAME": "v1.2.3", "GITHUB_EVENT_NAME": "push"}, "sha-abcdef0,v1.2.3"},
		{"pull request", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "abcdef0123", "GITHUB_REF_NAME": "42/merge", "GITHUB_EVENT_NAME": "pull_request"}, "sha-abcdef0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := strings.Join(ciTags(), ","); got != tc.want {
				t.Errorf("ciTags() = %q, want %q", got, tc.want)
			}
		})
	}
}

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
