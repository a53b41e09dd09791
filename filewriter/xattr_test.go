//go:build linux

package filewriter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOsKeepsACLAndXattrs: as whichever user runs the tests, a replaced
// file keeps its access ACL and user.* attributes exactly, and does not
// gain the ACL a new file inherits from its directory's default ACL.
func TestOsKeepsACLAndXattrs(t *testing.T) {
	setfacl, getfacl := lookPath(t, "setfacl", "acl"), lookPath(t, "getfacl", "acl")
	w, home, logs := newOs(t, nil)
	if err := unix.Setxattr(home, "user.courier.probe", []byte("1"), 0); err != nil {
		required(t, "a test directory on a filesystem with user xattrs (not "+home+": "+err.Error()+")")
	}
	acl := func(p string) string { return run(t, getfacl, "--omit-header", "--numeric", "--absolute-names", p) }
	// The directory's default ACL would give every new file a named entry.
	run(t, setfacl, "-d", "-m", "u:nobody:rw", home)
	plain, named := filepath.Join(home, "plain"), filepath.Join(home, "named")
	for _, p := range []string{plain, named} {
		if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run(t, setfacl, "-b", plain)                    // no ACL at all
	run(t, setfacl, "-m", "u:daemon:r", named)      // an ACL unlike the default
	_ = unix.Setxattr(named, "user.a", []byte{}, 0) // empty values are values too
	if err := unix.Setxattr(named, "user.b", []byte("two\x00bytes"), 0); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Geteuid() == 0
	if asRoot { // only root may set, or even list, trusted.*
		if err := unix.Setxattr(named, "trusted.courier", []byte("t"), 0); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{plain: acl(plain), named: acl(named)}
	if strings.Contains(before[plain], "nobody") || strings.Contains(before[plain], "65534") {
		t.Fatalf("fixture: %s", before[plain])
	}
	for _, p := range []string{plain, named} {
		if r := write1(t, w, p, "new"); r.Outcome != Written || r.InPlace != "" {
			t.Fatalf("%s: %+v", p, r)
		}
		if got := acl(p); got != before[p] {
			t.Errorf("%s: ACL\n%s\nwant\n%s", p, got, before[p])
		}
	}
	got, err := readXattrs(
		func(b []byte) (int, error) { return unix.Listxattr(named, b) },
		func(name string, b []byte) (int, error) { return unix.Getxattr(named, name, b) })
	if err != nil {
		t.Fatal(err)
	}
	if string(got["user.b"]) != "two\x00bytes" {
		t.Errorf("user.b = %q", got["user.b"])
	}
	if v, ok := got["user.a"]; !ok || len(v) != 0 {
		t.Errorf("user.a = %q, %v", v, ok)
	}
	if v := got["trusted.courier"]; asRoot && string(v) != "t" {
		t.Errorf("trusted.courier = %q", v)
	}
	if logs.Len() != 0 {
		t.Errorf("warnings: %v", logs.All())
	}
	noTemps(t, home)
}
