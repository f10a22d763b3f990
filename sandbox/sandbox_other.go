//go:build !linux

package sandbox

import (
	"context"
	"time"
)

// Init does nothing on systems without the sandbox.
func Init() {}

// Exec fails: the sandbox needs Linux.
func Exec(ctx context.Context, spec ExecSpec) error { return ErrUnsupported }

// App is not available on this system.
type App struct{}

// Boot fails: the sandbox needs Linux.
func Boot(ctx context.Context, spec BootSpec) (*App, error) { return nil, ErrUnsupported }

// Smoke fails: the sandbox needs Linux.
func Smoke(ctx context.Context, spec BootSpec, check Check) (*Report, error) {
	return nil, ErrUnsupported
}

// HostPort is 0: there is no sandbox on this system.
func (p *App) HostPort() int { return 0 }

// Done is never closed: there is no sandbox on this system.
func (p *App) Done() <-chan struct{} { return nil }

// ExitCode is -1: there is no sandbox on this system.
func (p *App) ExitCode() int { return -1 }

// Stop does nothing: there is no sandbox on this system.
func (p *App) Stop(grace time.Duration) {}

// CanRun reports whether the sandbox can run programs for an architecture: nowhere here.
func CanRun(arch string) error { return ErrUnsupported }
