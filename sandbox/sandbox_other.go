//go:build !linux

package sandbox

import "context"

// Init does nothing on systems without the sandbox.
func Init() {}

// Run fails: the sandbox needs Linux.
func Run(ctx context.Context, spec Spec) error { return ErrUnsupported }
