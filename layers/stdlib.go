package layers

import (
	"os"
	"strings"

	"github.com/pyship/pyship/detect"
)

// stdlibRequirement is the requirement the installer found no distribution for, when it
// is a module of the standard library.
func stdlibRequirement(out string) string {
	if name := unmatched(out); detect.StdlibModules[name] {
		return name
	}
	return ""
}

// stdlibLines finds, in the requirements files, the lines that name a module of the
// standard library ("base64", "json"): they are left out of an install that failed on one.
func stdlibLines(source string, files []string) (map[string][]int, error) {
	root, err := os.OpenRoot(source)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	drop := map[string][]int{}
	for _, f := range files {
		data, err := readRegular(root, f)
		if err != nil {
			return nil, err
		}
		for n, line := range strings.Split(string(data), "\n") {
			name := reqNameRe.FindString(strings.TrimSpace(line))
			if name != "" && detect.StdlibModules[name] {
				drop[f] = append(drop[f], n+1)
			}
		}
	}
	return drop, nil
}
