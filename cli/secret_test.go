package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canary is planted as a secret value; it must never appear in any output.
const canary = "CANARY-7f3a9c1e-never-print-me"

// loggedIn returns a CLI logged in to srv as alice.
func loggedIn(t *testing.T, srv *fakeServer) *cli {
	t.Helper()
	c := newCLI(t, "")
	c.ok(str("correct horse\n"), "login", srv.URL, "--username", "alice", "--password-stdin")
	return c
}

func TestLoginStoresPrivateConfigAndLogoutRevokes(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)

	path := filepath.Join(c.cfg, "config.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("config mode = %o, want 600", got)
	}
	di, err := os.Stat(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("config dir mode = %o, want 700", got)
	}
	var stored struct{ URL, Token string }
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &stored); err != nil || stored.URL != srv.URL || stored.Token == "" {
		t.Fatalf("config = %s (err %v), want url %s and a token", data, err, srv.URL)
	}

	if r := c.ok(nil, "whoami"); !strings.Contains(r.stdout, "alice") {
		t.Errorf("whoami = %q, want alice", r.stdout)
	}
	c.ok(nil, "logout")
	if !srv.hasRequest("POST /api/v2/users/logout") {
		t.Error("logout did not revoke the session on the server")
	}
	data, _ = os.ReadFile(path)
	if strings.Contains(string(data), stored.Token) {
		t.Error("token still in config after logout")
	}
	// The token is revoked server-side too: using it directly fails.
	c.env = append(c.env, "COURIER_SESSION_TOKEN="+stored.Token)
	if r := c.run(nil, "whoami"); r.code == 0 || !strings.Contains(r.stderr, "You must be logged in.") {
		t.Errorf("whoami with revoked token: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLoginRefusesBadPassword(t *testing.T) {
	srv := newFakeServer(t)
	c := newCLI(t, "")
	r := c.run(str("wrong\n"), "login", srv.URL, "--username", "alice", "--password-stdin")
	if r.code == 0 || !strings.Contains(r.stderr, "Incorrect username or password.") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(c.cfg, "config.json")); !os.IsNotExist(err) {
		t.Errorf("config written after a failed login: %v", err)
	}
	if strings.Contains(r.all(), "wrong") {
		t.Error("password echoed in output")
	}
}

func TestSecretRoundTrip(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.all()); return r }

	keep(c.ok(str(canary), "secret", "create", "api-key", "--description", "API key", "--env", "API_KEY", "--file", "~/.api-key"))
	if v, _ := srv.value("api-key"); v != canary {
		t.Fatalf("stored value = %q, want the canary", v)
	}

	r := keep(c.ok(nil, "secret", "list"))
	for _, want := range []string{"NAME", "api-key", "API_KEY", "~/.api-key", "API key"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = keep(c.ok(nil, "secret", "ls", "-o", "json"))
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if len(list) != 1 || list[0]["name"] != "api-key" || list[0]["env_name"] != "API_KEY" {
		t.Errorf("-o json = %v", list)
	}
	if _, ok := list[0]["value"]; ok {
		t.Error("-o json carries a value field")
	}

	// --env "" clears the env target, keeps the file target and the value.
	keep(c.ok(nil, "secret", "update", "api-key", "--env", ""))
	r = keep(c.ok(nil, "secret", "list", "api-key", "-o", "json"))
	var one map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil {
		t.Fatal(err)
	}
	if one["env_name"] != "" || one["file_path"] != "~/.api-key" {
		t.Errorf("after --env \"\": %v", one)
	}
	if v, _ := srv.value("api-key"); v != canary {
		t.Errorf("metadata update changed the value")
	}

	// A new value from stdin, no flags.
	keep(c.ok(str(canary+"-2"), "secret", "update", "api-key"))
	if v, _ := srv.value("api-key"); v != canary+"-2" {
		t.Errorf("value after stdin update = %q", v)
	}

	keep(c.ok(nil, "secret", "delete", "api-key", "--yes"))
	if _, ok := srv.value("api-key"); ok {
		t.Error("secret still there after delete")
	}
	r = keep(c.ok(nil, "secret", "list", "-o", "json"))
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list after delete = %q, want []", r.stdout)
	}

	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Fatalf("canary leaked in output:\n%s", out)
		}
	}
}

func TestSecretStdinTrailingNewlineIsVerbatim(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	r := c.ok(str(canary+"\n"), "secret", "create", "nl", "--env", "NL")
	if v, _ := srv.value("nl"); v != canary+"\n" {
		t.Fatalf("stored %q, want the canary plus its newline", v)
	}
	if !strings.Contains(r.stderr, "warning") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("want a one-line warning on stderr, got %q", r.stderr)
	}
	if strings.Contains(r.all(), canary) {
		t.Error("canary leaked")
	}
	// No warning without the newline.
	r = c.ok(str(canary), "secret", "create", "no-nl")
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("unexpected warning: %q", r.stderr)
	}
}

// TestSecretUpdateWithFlagsRefusesAWaitingValue: a value piped next to a
// flag is neither read nor silently dropped: the update is refused and
// changes nothing; --value-file - takes it explicitly; with stdin empty or
// absent a flag-only update goes through.
func TestSecretUpdateWithFlagsRefusesAWaitingValue(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	c.ok(str(canary), "secret", "create", "k")
	r := c.run(str(canary+"-new"), "secret", "update", "k", "--description", "d")
	if r.code == 0 || !strings.Contains(r.stderr, "waiting on stdin") || !strings.Contains(r.stderr, "--value-file -") {
		t.Fatalf("exit %d, stderr %q: want a refusal that says how to pass the value", r.code, r.stderr)
	}
	if strings.Contains(r.all(), canary) {
		t.Error("the refusal shows the value")
	}
	if v, _ := srv.value("k"); v != canary {
		t.Errorf("value = %q after a refused update", v)
	}
	if out := c.ok(nil, "secret", "list", "k", "-o", "json").stdout; strings.Contains(out, `"description":"d"`) {
		t.Errorf("a refused update changed the description: %s", out)
	}
	c.ok(str(""), "secret", "update", "k", "--description", "d") // an empty pipe holds nothing
	c.ok(str(canary+"-2"), "secret", "update", "k", "--value-file", "-", "--description", "rotated")
	if v, _ := srv.value("k"); v != canary+"-2" {
		t.Errorf("value = %q, want the one given with --value-file -", v)
	}
}

func TestSecretErrors(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	c.ok(str(canary), "secret", "create", "taken", "--env", "TAKEN")

	tests := []struct {
		name  string
		stdin *string
		args  []string
		want  []string // each must appear on stderr
	}{
		{"stdin and --value", str(canary), []string{"secret", "create", "x", "--value", canary + "2"}, []string{"given twice"}},
		{"no value at all", nil, []string{"secret", "create", "x"}, []string{"no value"}},
		{"empty stdin", str(""), []string{"secret", "create", "x"}, []string{"stdin is empty"}},
		{"duplicate name: server message and field", str(canary), []string{"secret", "create", "taken"},
			[]string{"A secret with that name already exists.", "name: is taken"}},
		{"reserved env", str(canary), []string{"secret", "create", "x", "--env", "PATH"}, []string{"env_name", "reserved"}},
		{"relative file", str(canary), []string{"secret", "create", "x", "--file", "../etc/passwd"}, []string{"file_path"}},
		{"tilde user", str(canary), []string{"secret", "create", "x", "--file", "~root/x"}, []string{"file_path"}},
		{"name with slash", str(canary), []string{"secret", "create", "a/b"}, []string{"name"}},
		{"NUL in value", str("a\x00b"), []string{"secret", "create", "x"}, []string{"NUL"}},
		{"too large", str(strings.Repeat("v", 24*1024+1)), []string{"secret", "create", "x"}, []string{"value", "over"}},
		{"update nothing", nil, []string{"secret", "update", "taken"}, []string{"nothing to update"}},
		{"update missing", nil, []string{"secret", "update", "ghost", "--description", "d"}, []string{"Secret not found."}},
		{"delete without --yes off a terminal", nil, []string{"secret", "delete", "taken"}, []string{"--yes"}},
		{"delete missing", nil, []string{"secret", "delete", "ghost", "--yes"}, []string{"Secret not found."}},
		{"bad output", nil, []string{"secret", "list", "-o", "yaml"}, []string{"unknown output format"}},
		{"import without format", str("A=b\n"), []string{"secret", "import", "-"}, []string{"--format"}},
		{"unknown command arg count", nil, []string{"secret", "create"}, []string{"NAME"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.stdin, tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want non-zero; stdout %q", r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.all(), canary) {
				t.Errorf("canary leaked:\n%s", r.all())
			}
		})
	}
	// R12: nothing changed.
	r := c.ok(nil, "secret", "list", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["name"] != "taken" || list[0]["env_name"] != "TAKEN" {
		t.Errorf("secret set changed by failed commands: %v", list)
	}
	if v, _ := srv.value("taken"); v != canary {
		t.Error("value changed by failed commands")
	}
}

func TestNotLoggedIn(t *testing.T) {
	c := newCLI(t, "")
	r := c.run(nil, "secret", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "courier login") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLoginWithExistingToken(t *testing.T) {
	srv := newFakeServer(t)
	first := loggedIn(t, srv)
	data, err := os.ReadFile(filepath.Join(first.cfg, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stored struct{ Token string }
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, "")
	r := c.ok(str(stored.Token+"\n"), "login", srv.URL, "--token", "-")
	if strings.Contains(r.all(), stored.Token) {
		t.Error("token printed")
	}
	if r := c.ok(nil, "whoami", "-o", "json"); !strings.Contains(r.stdout, `"username": "alice"`) {
		t.Errorf("whoami = %q", r.stdout)
	}
	bad := newCLI(t, "")
	if r := bad.run(str("bogus\n"), "login", srv.URL, "--token", "-"); r.code == 0 {
		t.Error("a bogus token was accepted")
	}
	if _, err := os.Stat(filepath.Join(bad.cfg, "config.json")); !os.IsNotExist(err) {
		t.Error("a bogus token was stored")
	}
}
