package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerUnitVerifies: deploy/courier-server.service passes
// systemd-analyze verify with the built server as its ExecStart, and runs
// the server as a non-root user with no capabilities.
func TestServerUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		unavailable(t, "systemd-analyze is missing (Debian's systemd)")
	}
	b, err := os.ReadFile("../courier-server.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"\nUser=courier\n", "\nCapabilityBoundingSet=\n", "\nNoNewPrivileges=yes\n", "\nExecStart=/usr/local/bin/courier server\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// verify checks that ExecStart exists; point it at the built server.
	unit = strings.ReplaceAll(unit, "/usr/local/bin/courier", courierBin(t))
	path := filepath.Join(t.TempDir(), "courier-server.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Unknown") || strings.Contains(string(out), "not valid") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("systemd-analyze verify said:\n%s", out)
	}
}
