package layers

import (
	"io"

	"github.com/pyship/pyship/plan"
)

// HashApp writes to h the application tree of the repository at source, as the
// application layer would hold it (the same files, ignore rules, modes and links, with
// fixed times): what `pyship plan --matrix` hashes to tell whether an app changed.
func HashApp(h io.Writer, source string, app plan.App) error {
	return hashTree(h, source, app)
}
