package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryValuesRealControlPlane: create and update send a value that is
// not UTF-8 text (from stdin or --value-file) as value_base64 by themselves,
// and the server stores it byte for byte; such a value with an env target is
// refused clearly; import refuses a file that is not UTF-8 and takes
// value_base64 entries.
func TestBinaryValuesRealControlPlane(t *testing.T) {
	srv := startRealServer(t)
	admin := newCLI(t, "")
	admin.ok(str(adminPassword+"\n"), "login", srv.url, "--username", "admin", "--password-stdin")
	admin.ok(str("alice-password-1\n"), "users", "create", "alice", "--email", "alice@example.com", "--password-stdin")
	alice := newCLI(t, "")
	alice.ok(str("alice-password-1\n"), "login", srv.url, "--username", "alice", "--password-stdin")
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }

	bin := "\xff\xfeA\x80\x00" + canary + "\n"
	r := keep(alice.ok(str(bin), "secret", "create", "keytab", "--file", "~/.keytab"))
	if !strings.Contains(r.stderr, "binary") {
		t.Errorf("no note that the value is binary: %q", r.stderr)
	}
	if v, _ := srv.value(t, "alice", "keytab"); v != bin {
		t.Fatalf("stdin: stored %d bytes, not the %d sent", len(v), len(bin))
	}

	file := filepath.Join(alice.home, "cert.der")
	der := "\x30\x82\x01\x00\x00\xff" + canary
	if err := os.WriteFile(file, []byte(der), 0o600); err != nil {
		t.Fatal(err)
	}
	keep(alice.ok(nil, "secret", "create", "cert", "--value-file", file, "--file", "/tmp/cert.der"))
	if v, _ := srv.value(t, "alice", "cert"); v != der {
		t.Fatal("--value-file on create: not stored byte for byte")
	}
	keep(alice.ok(nil, "secret", "update", "keytab", "--value-file", file))
	if v, _ := srv.value(t, "alice", "keytab"); v != der {
		t.Fatal("--value-file on update: not stored byte for byte")
	}
	keep(alice.ok(str(bin), "secret", "update", "keytab"))
	if v, _ := srv.value(t, "alice", "keytab"); v != bin {
		t.Fatal("stdin on update: not stored byte for byte")
	}
	// A text value with a NUL byte goes the same way.
	keep(alice.ok(str("a\x00"+canary), "secret", "create", "nul", "--file", "~/.nul"))
	if v, _ := srv.value(t, "alice", "nul"); v != "a\x00"+canary {
		t.Fatal("NUL value not stored byte for byte")
	}

	// Env targets hold text only.
	r = keep(alice.run(str(bin), "secret", "create", "envbin", "--env", "ENV_BIN"))
	if r.code == 0 || !strings.Contains(r.stderr, "can only be delivered as a file") {
		t.Fatalf("binary env value: exit %d, %q", r.code, r.stderr)
	}
	r = keep(alice.run(nil, "secret", "update", "keytab", "--env", "KEYTAB"))
	if r.code == 0 || !strings.Contains(r.stderr, "can only be delivered as a file") {
		t.Fatalf("env target on a binary secret: exit %d, %q", r.code, r.stderr)
	}
	r = keep(alice.run(nil, "secret", "create", "both", "--value", "x", "--value-file", file))
	if r.code == 0 || !strings.Contains(r.stderr, "value-file") {
		t.Fatalf("--value with --value-file: exit %d, %q", r.code, r.stderr)
	}

	// Import: a file that is not UTF-8 is refused before sending; a yaml
	// file with value_base64 works.
	bad := filepath.Join(alice.home, "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"name":"x","value":"`+"\xff"+canary+`","file_path":"~/x"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = keep(alice.run(nil, "secret", "import", bad))
	if r.code == 0 || !strings.Contains(r.stderr, "value_base64") {
		t.Fatalf("import of a non-UTF-8 file: exit %d, %q", r.code, r.stderr)
	}
	good := filepath.Join(alice.home, "good.yaml")
	if err := os.WriteFile(good, []byte("- name: p12\n  value_base64: /wAx\n  file_path: ~/.p12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keep(alice.ok(nil, "secret", "import", good))
	if v, _ := srv.value(t, "alice", "p12"); v != "\xff\x001" {
		t.Fatalf("import value_base64: stored %q", v)
	}
	for _, o := range outputs {
		if strings.Contains(o, canary) {
			t.Fatalf("a value reached the CLI output: %q", o)
		}
	}
}
