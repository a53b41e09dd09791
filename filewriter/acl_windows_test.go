//go:build windows

package filewriter

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
	"golang.org/x/sys/windows"
)

// skipACLUnderWine skips the DACL checks under Wine (CI sets
// COURIER_WINE=1): Wine 8.0 accepts SetNamedSecurityInfo but does not keep
// the DACL; GetNamedSecurityInfo then reports the one it makes up for every
// file, D:(A;;FA;;;SY)(A;;FA;;;<user>)(A;;0x1200a9;;;WD), whatever was set.
// The writes themselves, and the calls, are still exercised.
func skipACLUnderWine(t *testing.T) {
	t.Helper()
	if os.Getenv("COURIER_WINE") == "1" {
		t.Skip("Wine 8.0 does not store file DACLs (GetNamedSecurityInfo returns a made-up one); needs a real Windows kernel")
	}
}

// dacl reads p's DACL as SDDL and whether it is protected.
func dacl(t *testing.T, p string) (string, bool) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%s): %v", p, err)
	}
	control, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	return sd.String(), control&windows.SE_DACL_PROTECTED != 0
}

func osWriter(t *testing.T) (*Writer, string) {
	t.Helper()
	home := t.TempDir()
	w, err := New(Config{Fs: afero.NewOsFs(), Home: home})
	if err != nil {
		t.Fatal(err)
	}
	return w, home
}

// A new file has one ACE, full control for the agent's user, and inherits
// nothing from its directory.
func TestWindowsNewFileOwnerOnlyACL(t *testing.T) {
	w, home := osWriter(t)
	res := w.WriteAll(context.Background(), []File{{Secret: "s", Path: "~/.config/new", Content: []byte(canary)}})
	if res[0].Outcome != Written {
		t.Fatalf("%+v", res[0])
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".config", "new")); string(b) != canary {
		t.Errorf("content = %q", b)
	}
	skipACLUnderWine(t)
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	got, protected := dacl(t, filepath.Join(home, ".config", "new"))
	if want := "D:P(A;;FA;;;" + user.User.Sid.String() + ")"; got != want || !protected {
		t.Errorf("new file DACL = %q (protected %t), want %q, protected", got, protected, want)
	}
}

// A replaced file keeps its DACL, here a protected one that also lets
// Everyone read.
func TestWindowsReplaceKeepsACL(t *testing.T) {
	w, home := osWriter(t)
	p := filepath.Join(home, "shared")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;" + user.User.Sid.String() + ")(A;;FR;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := sd.DACL()
	if err := windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, want, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := dacl(t, p)
	res := w.WriteAll(context.Background(), []File{{Secret: "s", Path: "~/shared", Content: []byte(canary)}})
	if res[0].Outcome != Written || res[0].InPlace != "" {
		t.Fatalf("%+v, want an atomic replace", res[0])
	}
	if b, _ := os.ReadFile(p); string(b) != canary {
		t.Errorf("content = %q", b)
	}
	skipACLUnderWine(t)
	after, protected := dacl(t, p)
	if after != before || !protected {
		t.Errorf("DACL after replace = %q (protected %t), want %q, protected", after, protected, before)
	}
}
