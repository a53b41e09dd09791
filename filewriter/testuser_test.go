//go:build linux

package filewriter

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The unprivileged test user: created (as root) once per machine and reused.
// Tests run the writer as this user by re-executing the test binary with
// its credentials (see runAsTestUser).
const (
	testUserName    = "courier-test-user"
	testOtherGroup  = "courier-test-other"  // the user is never a member
	testMemberGroup = "courier-test-member" // the user's child process gets it as a supplementary group
)

// testUser holds the ids of the test user and groups.
type testUser struct {
	uid, gid           int
	otherGID, memberID int
}

// required fails the test under CI, where .ci/run provides what is missing,
// and skips it with a message elsewhere.
func required(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI=true (CI runs the tests as root, with .ci/run's packages)", what)
	}
	t.Skipf("needs %s; run the tests as root to include it (CI always does)", what)
}

// lookPath returns bin's path, or fails or skips through required.
func lookPath(t *testing.T, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		required(t, bin+" (Debian package "+pkg+")")
	}
	return p
}

// ensureTestUser creates the test user and groups if they do not exist.
// It is idempotent and tolerates a concurrent creation by another test
// package (useradd then waits on /etc/passwd's lock).
func ensureTestUser(t *testing.T) testUser {
	t.Helper()
	if os.Geteuid() != 0 {
		required(t, "root (to create the unprivileged user "+testUserName+")")
	}
	group := func(name string) int {
		t.Helper()
		ensure(t, func() bool { _, err := user.LookupGroup(name); return err == nil }, "groupadd", "-f", name)
		g, _ := user.LookupGroup(name)
		id, _ := strconv.Atoi(g.Gid)
		return id
	}
	other, member := group(testOtherGroup), group(testMemberGroup)
	group(testUserName) // the user's own group, made first so a half-made user from an earlier run is no obstacle
	ensure(t, func() bool { _, err := user.Lookup(testUserName); return err == nil },
		"useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", "--gid", testUserName, testUserName)
	u, _ := user.Lookup(testUserName)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return testUser{uid: uid, gid: gid, otherGID: other, memberID: member}
}

func ensure(t *testing.T, exists func() bool, cmd ...string) {
	t.Helper()
	var out []byte
	for range 50 {
		if exists() {
			return
		}
		var err error
		if out, err = exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err == nil {
			continue
		}
		time.Sleep(100 * time.Millisecond) // another package holds the lock
	}
	t.Fatalf("%v: %s", cmd, out)
}

// userDir returns a fresh directory owned by u, 0755, inside a root-owned
// 0755 directory (both removed when the test ends), and the latter.
func userDir(t *testing.T, u testUser) (dir, base string) {
	t.Helper()
	base, err := os.MkdirTemp("", "courier-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	dir = filepath.Join(base, "home")
	for _, err := range []error{os.Chmod(base, 0o755), os.Mkdir(dir, 0o755), os.Chown(dir, u.uid, u.gid)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir, base
}

// copyTestBinary copies the running test binary into dir, where the test
// user may execute it (go test builds into a directory only root may read).
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "filewriter.test")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
