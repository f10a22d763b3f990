package detect

import (
	"testing"
	"time"
)

func TestSpecifierPreferred(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string // "" for none
	}{
		{">=3.8", "3.14"},
		{">=3.9,<3.13", "3.12"},
		{">=3.9, <3.12", "3.11"},
		{"<3.12", "3.11"},
		{"<=3.12", "3.12"},
		{"<=3.12.0", "3.12"},
		{">3.12", "3.14"},
		{">3.14", "3.14"}, // 3.14.1 and later
		{">=3.15", "3.15"},
		{">=3.16", ""},
		{"==3.11.*", "3.11"},
		{"==3.12", "3.12"},
		{"==3.12.4", "3.12"},
		{"~=3.11", "3.14"},
		{"~=3.11.2", "3.11"},
		{"^3.11", "3.14"},
		{"~3.11", "3.11"},
		{"3.12", "3.12"},
		{"3.12.*", "3.12"},
		{">=3.11,!=3.14.*", "3.13"},
		{">=3.11,<3.11.3", "3.11"},
		{">=3.11.5,<3.11.3", ""},
		{"<3.0", ""},
		{"*", "3.14"},
		{"<3.10", "3.9"},
		{"<3.9", ""},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ParseSpecifier(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := Preferred(s.Allowed())
			if got != tc.want {
				t.Errorf("Preferred(%q) = %q, want %q", tc.spec, got, tc.want)
			}
		})
	}
}

func TestSpecifierErrors(t *testing.T) {
	for _, spec := range []string{">=three", ">=3.11.*", "~=3", "^3.11 || ^4.0", ">=3.1.2.3"} {
		if _, err := ParseSpecifier(spec); err == nil {
			t.Errorf("ParseSpecifier(%q) gave no error", spec)
		}
	}
}

func TestPythonMinor(t *testing.T) {
	for in, want := range map[string]string{
		"3.12": "3.12", "3.12.4": "3.12", "python-3.11.9": "3.11", "3.13t": "3.13", " 3.11\n": "3.11",
		"pypy3.10": "", "system": "", "3": "",
	} {
		if got, _ := pythonMinor(in); got != want {
			t.Errorf("pythonMinor(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestForTime checks the Python of a commit's time: the newest whose wheels were broad
// then, never older than 3.10 (3.9 is for repositories that name it or whose pins need it).
func TestForTime(t *testing.T) {
	for _, tc := range []struct {
		when string
		want string
	}{
		{"2017-05-01", "3.10"},
		{"2022-06-01", "3.10"},
		{"2023-06-01", "3.11"},
		{"2025-01-01", "3.12"},
		{"2025-06-01", "3.13"},
		{"2026-11-01", "3.14"},
		{"2027-05-01", "3.15"},
	} {
		when, err := time.Parse(time.DateOnly, tc.when)
		if err != nil {
			t.Fatal(err)
		}
		if got := ForTime(SupportedPythons, when); got != tc.want {
			t.Errorf("ForTime(%s) = %s, want %s", tc.when, got, tc.want)
		}
	}
	if got := ForTime([]string{"3.9"}, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)); got != "3.9" {
		t.Errorf("ForTime with only 3.9 allowed = %s, want 3.9", got)
	}
}
