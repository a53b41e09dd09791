//go:build !windows

package sshd

import "testing"

// skipUnlessUnixShell: the harness's /bin/sh is here.
func skipUnlessUnixShell(*testing.T) {}
