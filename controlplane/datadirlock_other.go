//go:build !unix

package controlplane

// lockDataDir takes no lock here: on Windows one process opening the
// SQLite database already holds its files open, and flock does not exist.
func lockDataDir(string) (func(), error) { return func() {}, nil }
