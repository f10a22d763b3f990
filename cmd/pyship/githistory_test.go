package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDependencyTime: the time open versions resolve as of is the last commit that changed
// the dependency files, in a project below the work tree's top too, packed or loose; a
// clone too shallow to tell says so.
func TestDependencyTime(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir := newGitRepo(t, format, 1_600_000_000)
			svc := filepath.Join(dir, "services", "api")
			commit := func(ts int64, files map[string]string) {
				t.Helper()
				for name, content := range files {
					p := filepath.Join(dir, name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				gitCLI(t, dir, nil, "add", "-A")
				gitCLI(t, dir, []string{fmt.Sprintf("GIT_COMMITTER_DATE=@%d +0000", ts)}, "commit", "-q", "-m", fmt.Sprint(ts))
			}
			commit(1_600_000_100, map[string]string{"services/api/requirements.txt": "flask\n", "services/api/app.py": "1\n"})
			commit(1_600_000_200, map[string]string{"services/api/requirements.txt": "flask\nrequests\n"})
			commit(1_600_000_300, map[string]string{"services/api/app.py": "2\n", "README": "x\n"})
			commit(1_600_000_400, map[string]string{"services/api/app.py": "3\n"})

			check := func(files []string, want int64) {
				t.Helper()
				got, id, err := dependencyTime(svc, files)
				if err != nil || got.Unix() != want || len(id) < 40 {
					t.Errorf("dependencyTime(%v) = %v %s (%v), want %d", files, got.Unix(), id, err, want)
				}
			}
			check([]string{"requirements.txt"}, 1_600_000_200)
			check([]string{"app.py"}, 1_600_000_400)
			check([]string{"requirements.txt", "constraints.txt"}, 1_600_000_200)
			gitCLI(t, dir, nil, "gc", "-q", "--aggressive")
			check([]string{"requirements.txt"}, 1_600_000_200)

			shallow := t.TempDir()
			gitCLI(t, shallow, nil, "clone", "-q", "--depth", "1", "file://"+dir, "c")
			if _, _, err := dependencyTime(filepath.Join(shallow, "c", "services", "api"), []string{"requirements.txt"}); !errors.Is(err, errHistory) {
				t.Errorf("a shallow clone told a time: %v", err)
			}
		})
	}
}
