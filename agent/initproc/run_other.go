//go:build !linux

package initproc

import "errors"

// ErrUnsupported is returned by Run where it is not implemented: only
// Linux containers have a PID 1 for the agent to be.
var ErrUnsupported = errors.New("initproc: only on Linux")

// Run is Linux-only; elsewhere it returns ErrUnsupported.
func Run(cfg Config) (int, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	return 0, ErrUnsupported
}
