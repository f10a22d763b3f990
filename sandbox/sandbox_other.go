//go:build !linux

package sandbox

import "context"

// Init does nothing on systems without the sandbox.
func Init() {}

// Run fails: the sandbox needs Linux.
func Run(ctx context.Context, spec Spec) error { return ErrUnsupported }

// Process is not available on this system.
type Process struct{}

// Start fails: the sandbox needs Linux.
func Start(ctx context.Context, spec RunSpec) (*Process, error) { return nil, ErrUnsupported }

// Smoke fails: the sandbox needs Linux.
func Smoke(ctx context.Context, spec RunSpec, check Check) (*Report, error) {
	return nil, ErrUnsupported
}
