package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/plan"
)

// bigRepo writes a repository of n files: a FastAPI service in src/ with many packages,
// modules, templates and data files, the shape of a large monorepo service.
func bigRepo(b *testing.B, n int) string {
	b.Helper()
	root := b.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("pyproject.toml", "[project]\nname = \"big\"\nversion = \"1\"\nrequires-python = \">=3.11\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n")
	write("src/big/__init__.py", "")
	write("src/big/main.py", "from fastapi import FastAPI\napp = FastAPI()\n")
	for i := 0; i < n-3; i++ {
		pkg := fmt.Sprintf("src/big/pkg%03d", i/100)
		if i%100 == 0 {
			write(pkg+"/__init__.py", "")
			continue
		}
		switch i % 3 {
		case 0:
			write(fmt.Sprintf("%s/mod%03d.py", pkg, i%100), "def f():\n    return 1\n")
		case 1:
			write(fmt.Sprintf("%s/templates/t%03d.html", pkg, i%100), "<p>{{ x }}</p>\n")
		default:
			write(fmt.Sprintf("data/d%03d/f%05d.json", i/1000, i), "{}\n")
		}
	}
	return root
}

// BenchmarkPlan100kFiles detects and plans a repository of 100,000 files. The goal is
// under 2 seconds an operation.
func BenchmarkPlan100kFiles(b *testing.B) {
	root := bigRepo(b, 100_000)
	fsys := os.DirFS(root)
	b.ResetTimer()
	for b.Loop() {
		res, err := detect.Detect(context.Background(), fsys, detect.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := plan.New(res, plan.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
