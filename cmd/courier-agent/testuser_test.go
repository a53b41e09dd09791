//go:build linux

package main_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The unprivileged workspace user of these tests: created (as root) once
// per machine and reused; the agent runs with its credentials. The same
// user and groups serve filewriter's tests.
const (
	wsUserName   = "courier-test-user"
	wsOtherGroup = "courier-test-other" // the user is never a member
)

// wsUser is the test user's identity.
type wsUser struct {
	uid, gid, otherGID int
}

// credential runs a process as u, with no supplementary group.
func (u wsUser) credential() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}}
}

// requireRoot fails under CI (which runs as root) and skips elsewhere when
// the test cannot create the user.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("root is required on CI to create the unprivileged user %s", wsUserName)
	}
	t.Skipf("run the tests as root to include the agent as an unprivileged user (CI always does)")
}

// ensureWsUser creates the test user and group if missing; idempotent, and
// safe against a concurrent creation by another test package.
func ensureWsUser(t *testing.T) wsUser {
	t.Helper()
	requireRoot(t)
	try := func(exists func() bool, cmd ...string) {
		var out []byte
		for range 50 {
			if exists() {
				return
			}
			var err error
			if out, err = exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
				time.Sleep(100 * time.Millisecond) // another package holds the lock
			}
		}
		t.Fatalf("%v: %s", cmd, out)
	}
	for _, g := range []string{wsOtherGroup, wsUserName} { // the user's own group first, so a half-made user is no obstacle
		try(func() bool { _, err := user.LookupGroup(g); return err == nil }, "groupadd", "-f", g)
	}
	try(func() bool { _, err := user.Lookup(wsUserName); return err == nil },
		"useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", "--gid", wsUserName, wsUserName)
	u, _ := user.Lookup(wsUserName)
	g, _ := user.LookupGroup(wsOtherGroup)
	var w wsUser
	w.uid, _ = strconv.Atoi(u.Uid)
	w.gid, _ = strconv.Atoi(u.Gid)
	w.otherGID, _ = strconv.Atoi(g.Gid)
	return w
}

// wsBase returns a fresh root-owned 0755 directory, removed when the test
// ends, that the user may traverse (go test's own temporary directories are
// 0700), and mk, which creates a directory in it owned by the user (0700).
func wsBase(t *testing.T, u wsUser) (base string, mk func(name string) string) {
	t.Helper()
	base, err := os.MkdirTemp("", "courier-ws-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base, func(name string) string {
		t.Helper()
		d := filepath.Join(base, name)
		for _, err := range []error{os.Mkdir(d, 0o700), os.Chown(d, u.uid, u.gid)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
}

// wsDirs creates dir and its missing parents, owned by u, 0700.
func wsDirs(t *testing.T, u wsUser, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	wsDirs(t, u, filepath.Dir(dir))
	for _, err := range []error{os.Mkdir(dir, 0o700), os.Chown(dir, u.uid, u.gid)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// wsFile writes a file owned by uid:gid with mode; its directory exists.
func wsFile(t *testing.T, p, content string, uid, gid int, mode os.FileMode) {
	t.Helper()
	for _, err := range []error{os.WriteFile(p, []byte(content), mode), os.Chmod(p, mode), os.Chown(p, uid, gid)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}
