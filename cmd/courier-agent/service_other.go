//go:build !windows

package main

import (
	"context"
	"errors"
)

// runAsService: only Windows has a service manager to answer.
func runAsService(_ func(context.Context) error, forced bool) (bool, error) {
	if forced {
		return true, errors.New("--service: the agent runs as a service only on Windows")
	}
	return false, nil
}
