//go:build unix

package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockDataDir takes the data directory's lock file (flock, exclusive, not
// waiting) for a server on SQLite: a second server on the same database
// would serve, but neither would hear of the other's changes, revocations
// or suspensions (replicas need PostgreSQL). The lock holds the holder's
// PID for the message; the kernel releases it when the process ends, even
// killed. Maintenance commands (reseal) do not take it.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%w: %s (%s holds %s); two servers on one SQLite database do not hear each other's changes: stop the other one, or run replicas on PostgreSQL",
				ErrDataDirInUse, dir, holder, lockFile)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { _ = f.Close() }, nil
}
