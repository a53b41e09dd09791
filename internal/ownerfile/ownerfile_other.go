//go:build !windows

package ownerfile

import "os"

// Restrict makes p readable and writable by its owner only: mode 0600.
func Restrict(p string) error { return os.Chmod(p, 0o600) }
