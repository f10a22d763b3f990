//go:build !linux

package sandbox

import (
	"context"
	"time"
)

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

// HostPort is 0: there is no sandbox on this system.
func (p *Process) HostPort() int { return 0 }

// Done is never closed: there is no sandbox on this system.
func (p *Process) Done() <-chan struct{} { return nil }

// ExitCode is -1: there is no sandbox on this system.
func (p *Process) ExitCode() int { return -1 }

// Stop does nothing: there is no sandbox on this system.
func (p *Process) Stop(grace time.Duration) {}
