package detect

import "testing"

func TestMarkerDecide(t *testing.T) {
	extras := map[string]bool{"standard": true}
	groups := map[string]bool{"default": true}
	for _, tc := range []struct{ in, want string }{
		{`sys_platform == "linux"`, `sys_platform == "linux"`},
		{`python_version >= '3.9' and python_version < "3.13"`, `python_version >= '3.9' and python_version < "3.13"`},
		{`'dev' in dependency_groups`, `false`},
		{`'default' in dependency_groups`, `true`},
		{`'dev' not in dependency_groups`, `true`},
		{`extra == "standard"`, `true`},
		{`extra == 'test' and sys_platform == 'linux'`, `false`},
		{`extra == 'test' or sys_platform == 'linux'`, `sys_platform == 'linux'`},
		{`(sys_platform == 'win32' or sys_platform == 'cygwin') and 'default' in dependency_groups`, `sys_platform == 'win32' or sys_platform == 'cygwin'`},
		{`(a == 'x' or b == 'y') and c == 'z'`, `(a == 'x' or b == 'y') and c == 'z'`},
		{`platform_machine not in 'x86_64 aarch64'`, `platform_machine not in 'x86_64 aarch64'`},
	} {
		m, err := parseMarker(tc.in)
		if err != nil {
			t.Errorf("parseMarker(%q): %v", tc.in, err)
			continue
		}
		if got := decide(m, extras, groups).String(); got != tc.want {
			t.Errorf("decide(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{`sys_platform ==`, `(a == 'b'`, `a == 'b' and`, `a = 'b'`, `'open`, `a == 'b' c`} {
		if _, err := parseMarker(bad); err == nil {
			t.Errorf("parseMarker(%q) gave no error", bad)
		}
	}
}
