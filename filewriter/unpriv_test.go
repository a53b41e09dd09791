//go:build linux

package filewriter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// childEnv marks a re-executed test binary: TestMain runs the writer as the
// unprivileged test user (runChild) instead of the tests.
const childEnv = "COURIER_FILEWRITER_CHILD"

// childJob is what the parent asks the child to write.
type childJob struct {
	Home  string `json:"home"`
	Files []File `json:"files"`
}

// childResult is one Result, flattened for JSON.
type childResult struct {
	Secret, Path, Outcome, InPlace, Err string
}

// childReport is what the child prints on stdout.
type childReport struct {
	Results []childResult `json:"results"`
	// Warnings are the writer's warnings: message and path.
	Warnings [][2]string `json:"warnings"`
}

// runChild runs in the re-executed binary when childEnv is set: it writes
// the job with a Writer on the OS filesystem and prints a childReport. It
// reports whether it ran, so TestMain exits instead of running tests.
func runChild() bool {
	raw := os.Getenv(childEnv)
	if raw == "" {
		return false
	}
	var job childJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		panic(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	w, err := New(Config{Home: job.Home, Logger: zap.New(core), UID: -1, GID: -1})
	if err != nil {
		panic(err)
	}
	var rep childReport
	for _, r := range w.WriteAll(context.Background(), job.Files) {
		cr := childResult{Secret: r.Secret, Path: r.Path, Outcome: string(r.Outcome), InPlace: r.InPlace}
		if r.Err != nil {
			cr.Err = r.Err.Error()
		}
		rep.Results = append(rep.Results, cr)
	}
	for _, e := range logs.All() {
		p, _ := e.ContextMap()["path"].(string)
		rep.Warnings = append(rep.Warnings, [2]string{e.Message, p})
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		panic(err)
	}
	return true
}

// runAsTestUser writes files as the test user, in a re-executed copy of
// this test binary with the user's uid, gid and the member group.
func runAsTestUser(t *testing.T, u testUser, binDir string, job childJob) childReport {
	t.Helper()
	bin := copyTestBinary(t, binDir)
	raw, _ := json.Marshal(job)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = job.Home
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + job.Home, childEnv + "=" + string(raw)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{uint32(u.memberID)},
	}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as %s: %v\n%s", testUserName, err, stderr.String())
	}
	var rep childReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return rep
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// fixture is one existing file, set up as root before the child runs.
type fixture struct {
	path     string
	uid, gid int
	mode     os.FileMode
}

func (f fixture) create(t *testing.T) {
	t.Helper()
	for _, err := range []error{os.WriteFile(f.path, []byte("old "+filepath.Base(f.path)), f.mode),
		os.Chmod(f.path, f.mode), os.Chown(f.path, f.uid, f.gid)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestUnprivilegedKeepsAttributes runs the writer as an unprivileged user on
// the real filesystem (R6): a file of a group the user is not in keeps its
// group by being written in place, with one warning and InPlace; a file of
// a group the user is in, one with a POSIX ACL and one with a user.* xattr
// are replaced atomically (new inode) and keep group, ACL and xattr; a file
// the user may not write, and a file in a directory the user may not write,
// fail with an error naming the path and the permission and are left
// alone; every other file is written.
func TestUnprivilegedKeepsAttributes(t *testing.T) {
	u := ensureTestUser(t)
	setfacl, getfacl := lookPath(t, "setfacl", "acl"), lookPath(t, "getfacl", "acl")
	home, base := userDir(t, u)
	if err := unix.Setxattr(home, "user.courier.probe", []byte("1"), 0); err != nil {
		required(t, "a test directory on a filesystem with user xattrs (not "+home+": "+err.Error()+")")
	}
	ro := filepath.Join(base, "root-only")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	at := func(n string) string { return filepath.Join(home, n) }
	fx := map[string]fixture{
		"other-group": {at("other-group"), u.uid, u.otherGID, 0o640},
		"member":      {at("member"), u.uid, u.memberID, 0o640},
		"acl":         {at("acl"), u.uid, u.gid, 0o640},
		"xattr":       {at("xattr"), u.uid, u.gid, 0o600},
		"root-file":   {at("root-file"), 0, 0, 0o644},
		"root-dir":    {filepath.Join(ro, "f"), 0, 0, 0o644},
	}
	for _, f := range fx {
		f.create(t)
	}
	run(t, setfacl, "-m", "u:nobody:r,g:"+testOtherGroup+":r", fx["acl"].path)
	aclBefore := run(t, getfacl, "--omit-header", "--numeric", "--absolute-names", fx["acl"].path)
	if !strings.Contains(aclBefore, "user:65534:r--") {
		t.Fatalf("setfacl did not set the ACL: %s", aclBefore)
	}
	if err := unix.Setxattr(fx["xattr"].path, "user.courier.kept", []byte("label-v1"), 0); err != nil {
		t.Fatal(err)
	}
	inodes := map[string]uint64{}
	var files []File
	for _, n := range []string{"acl", "member", "new", "other-group", "root-dir", "root-file", "xattr"} {
		p := at(n)
		if f, ok := fx[n]; ok {
			inodes[n], p = inode(t, f.path), f.path
		}
		files = append(files, File{Secret: n, Path: p, Content: []byte("new " + n)})
	}

	rep := runAsTestUser(t, u, base, childJob{Home: home, Files: files})

	byName := map[string]childResult{}
	for _, r := range rep.Results {
		byName[r.Secret] = r
	}
	// Replaced atomically, attributes kept.
	for _, n := range []string{"acl", "member", "xattr", "new"} {
		r := byName[n]
		if r.Outcome != string(Written) || r.InPlace != "" || r.Err != "" {
			t.Errorf("%s: %+v, want written by rename", n, r)
		}
		if got := read(t, at(n)); got != "new "+n {
			t.Errorf("%s holds %q", n, got)
		}
		if f, ok := fx[n]; ok {
			if inode(t, f.path) == inodes[n] {
				t.Errorf("%s: same inode: written in place, not replaced", n)
			}
			checkOwner(t, f)
		}
	}
	if st, _ := os.Stat(at("new")); st == nil || st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
		t.Errorf("new file: %v", st)
	}
	if after := run(t, getfacl, "--omit-header", "--numeric", "--absolute-names", fx["acl"].path); after != aclBefore {
		t.Errorf("ACL changed:\n%s\nwant\n%s", after, aclBefore)
	}
	v := make([]byte, 64)
	if n, err := unix.Getxattr(fx["xattr"].path, "user.courier.kept", v); err != nil || string(v[:n]) != "label-v1" {
		t.Errorf("user xattr after the write: %q, %v", v[:max(n, 0)], err)
	}

	// A group the user is not in: written in place, group kept, one warning.
	og := byName["other-group"]
	if og.Outcome != string(Written) || !strings.Contains(og.InPlace, "group") || og.Err != "" {
		t.Errorf("other-group: %+v, want written in place with a reason", og)
	}
	if inode(t, fx["other-group"].path) != inodes["other-group"] || read(t, fx["other-group"].path) != "new other-group" {
		t.Error("other-group: not written in place")
	}
	checkOwner(t, fx["other-group"])

	// Not writable by the user: failed, named, untouched.
	for n, why := range map[string]string{
		"root-file": "open " + fx["root-file"].path + ": permission denied",
		"root-dir":  "directory " + ro + " is not writable by uid " + fmt.Sprint(u.uid) + ", the agent's user: permission denied",
	} {
		f, r := fx[n], byName[n]
		if r.Outcome != string(Failed) || !strings.Contains(r.Err, why) {
			t.Errorf("%s: %+v, want failed with %q", n, r, why)
		}
		if got := read(t, f.path); got != "old "+filepath.Base(f.path) {
			t.Errorf("%s changed to %q", n, got)
		}
		checkOwner(t, f)
	}
	var warned []string
	for _, w := range rep.Warnings {
		warned = append(warned, w[1])
		if !strings.Contains(w[0], "in place") {
			t.Errorf("unexpected warning %q", w[0])
		}
	}
	if len(warned) != 1 || warned[0] != fx["other-group"].path {
		t.Errorf("in-place warnings for %v, want exactly one for %s", warned, fx["other-group"].path)
	}
	for _, d := range []string{home, ro} {
		noTemps(t, d)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkOwner(t *testing.T, f fixture) {
	t.Helper()
	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != f.uid || int(sys.Gid) != f.gid || st.Mode().Perm() != f.mode {
		t.Errorf("%s: %d:%d %v, want %d:%d %v", f.path, sys.Uid, sys.Gid, st.Mode().Perm(), f.uid, f.gid, f.mode)
	}
}
