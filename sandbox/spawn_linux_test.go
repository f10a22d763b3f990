package sandbox

import (
	"os"
	"testing"
)

func TestExtraFilesPlacesEachByItsDescriptor(t *testing.T) {
	var files []*os.File
	for range 3 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	spec, published, exe := files[0], files[1], files[2]
	got := extraFiles(map[int]*os.File{fdSpec: spec, fdSetupError: nil, fdPublished: published, fdExe: exe})
	if len(got) != fdExe-2 {
		t.Fatalf("%d extra files, want %d (descriptors 3 to %d)", len(got), fdExe-2, fdExe)
	}
	for fd, want := range map[int]*os.File{fdSpec: spec, fdSetupError: nil, fdPublished: published, fdEgress: nil, fdExe: exe} {
		if got[fd-3] != want {
			t.Errorf("descriptor %d gets %v, want %v", fd, got[fd-3], want)
		}
	}
}
