package agent

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// badCP is a malicious or broken control plane: it speaks the agent
// protocol's transport (websocket, yamux, HTTP) but answers the manifest and
// secrets routes with whatever bytes a test gives it.
type badCP struct {
	*fakeCP
	manifest, secrets []byte

	mu      sync.Mutex // guards the fields that follow
	applies []string   // raw apply reports
	fetches int        // secrets answers served
}

func newBadCP(t *testing.T, manifest, secrets []byte) *badCP {
	t.Helper()
	b := &badCP{manifest: manifest, secrets: secrets}
	b.fakeCP = newFakeCP(t, "", func(mux *http.ServeMux) {
		mux.HandleFunc("GET "+proto.PathManifest, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b.manifest) })
		mux.HandleFunc("GET "+proto.PathSecrets, func(w http.ResponseWriter, _ *http.Request) {
			b.mu.Lock()
			b.fetches++
			b.mu.Unlock()
			_, _ = w.Write(b.secrets)
		})
		mux.HandleFunc("POST "+proto.PathApply, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			b.mu.Lock()
			b.applies = append(b.applies, string(body))
			b.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		})
		mux.HandleFunc("POST /", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	})
	return b
}

func (b *badCP) state() (fetches int, applies []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches, append([]string(nil), b.applies...)
}

// tree lists every file under dir with its mode and contents, to compare
// the disk before and after.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		c := ""
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c = string(b)
		}
		out[p] = info.Mode().String() + " " + c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if w, ok := before[p]; !ok {
			t.Errorf("new file on disk: %s", p)
		} else if w != v {
			t.Errorf("file changed: %s", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("file removed: %s", p)
		}
	}
}

func goodManifest(t *testing.T, outDir string) []byte {
	t.Helper()
	b, err := json.Marshal(proto.Manifest{WorkspaceID: "w", WorkspaceName: "dev", OwnerID: "u", OwnerName: "dev",
		Env: map[string]string{}, Scripts: []proto.Script{{Name: "proof", Script: "env > " + filepath.Join(outDir, "env.out")}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const goodSecrets = `{"secrets":[{"id":"1","name":"f","value":"` + canary + `-new","file_path":"~/f","updated_at":"2026-01-01T00:00:00Z"}]}`

// TestMaliciousControlPlaneAnswers: an answer the agent cannot read
// (malformed, wrong types, too large, invalid UTF-8, a repeated key, a
// malformed value encoding) is refused whole: an error is logged without
// the answer's contents, no file on disk changes, no startup script runs,
// and the agent keeps retrying rather than crashing.
func TestMaliciousControlPlaneAnswers(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("\xff" + canary))
	huge := `{"secrets":[{"name":"big","value":"` + strings.Repeat("x", proto.MaxBodyBytes) + `","file_path":"~/f"}]}`
	cases := []struct {
		name              string
		manifest, secrets string // "" means the good one
		want              string // in the logged error
	}{
		{"manifest truncated", `{"workspace_id":"w","env":{`, "", "malformed answer"},
		{"manifest not JSON", `<html>502 Bad Gateway</html>`, "", "malformed answer"},
		{"manifest wrong type", `{"workspace_id":"w","env":"` + canary + `"}`, "", "wrong JSON type"},
		{"manifest scripts wrong type", `{"workspace_id":"w","scripts":{"name":"x"}}`, "", "wrong JSON type"},
		{"manifest repeated key", `{"workspace_id":"w","env":{"A":"` + canary + `","A":"2"}}`, "", `key \"A\" appears more than once`},
		{"manifest invalid UTF-8", "{\"workspace_id\":\"w\",\"env\":{\"A\":\"\xff" + canary + "\"}}", "", "invalid UTF-8"},
		{"manifest oversize", `{"workspace_id":"` + strings.Repeat("w", proto.MaxBodyBytes) + `"}`, "", "larger than"},
		{"secrets not JSON", "", canary + " garbage", "malformed answer"},
		{"secrets empty body", "", "", "malformed answer"},
		{"secrets wrong type", "", `{"secrets":{"name":"f","value":"` + canary + `"}}`, "wrong JSON type"},
		{"secret value wrong type", "", `{"secrets":[{"name":"f","value":5,"file_path":"~/f"}]}`, "wrong JSON type"},
		{"secrets repeated key", "", `{"secrets":[{"name":"f","file_path":"~/f","value":"` + canary + `","value":"x"}]}`, `key \"value\" appears more than once`},
		{"secrets invalid UTF-8", "", "{\"secrets\":[{\"name\":\"f\",\"file_path\":\"~/f\",\"value\":\"\xfe" + canary + "\"}]}", "invalid UTF-8"},
		{"secrets lone surrogate", "", `{"secrets":[{"name":"f","file_path":"~/f","value":"\udc00` + canary + `"}]}`, "surrogate"},
		{"secrets two values", "", `{"secrets":[]} {"secrets":[]}`, "more than one JSON value"},
		{"secret value twice", "", `{"secrets":[{"name":"f","file_path":"~/f","value":"` + canary + `","value_base64":"` + b64 + `"}]}`, "both value and value_base64"},
		{"secret bad base64", "", `{"secrets":[{"name":"f","file_path":"~/f","value_base64":"` + canary + `!"}]}`, "not valid base64"},
		{"secrets oversize", "", huge, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home, out := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(home, "f"), []byte("old"), 0o640); err != nil {
				t.Fatal(err)
			}
			before := tree(t, home)
			manifest, secrets := goodManifest(t, out), []byte(goodSecrets)
			if tc.manifest != "" {
				manifest = []byte(tc.manifest)
			}
			if tc.secrets != "" || tc.name == "secrets empty body" {
				secrets = []byte(tc.secrets)
			}
			b := newBadCP(t, manifest, secrets)
			_, logs, stop := startAgentAt(t, b.URL(), home, nil)
			eventually(t, "two refused answers", func() bool {
				return strings.Count(logs.String(), "the control plane sent an answer the agent cannot use") >= 2
			})
			stop()
			log := logs.String()
			if !strings.Contains(log, tc.want) {
				t.Errorf("the log does not say %q:\n%s", tc.want, log)
			}
			if strings.Contains(log, canary) || strings.Contains(log, "panic") {
				t.Errorf("the log holds the canary or a panic:\n%s", log)
			}
			sameTree(t, before, tree(t, home))
			if _, err := os.Stat(filepath.Join(out, "env.out")); err == nil {
				t.Error("a startup script ran although nothing was applied")
			}
			if _, applies := b.state(); len(applies) != 0 {
				t.Errorf("an apply was reported: %v", applies)
			}
		})
	}
}

// TestMaliciousControlPlaneSecrets: secrets that break the rules (paths
// outside the rules, reserved or malformed env names, a binary value for
// env, names that are not names) are each refused: reported as failed with
// a reason and no value, nothing written for them, their values in no
// process's env, and the home unchanged. A valid secret in the same answer
// is applied.
func TestMaliciousControlPlaneSecrets(t *testing.T) {
	bin := base64.StdEncoding.EncodeToString([]byte("\xff\x00" + canary))
	entries := []string{
		`{"name":"dotdot","value":"` + canary + `","file_path":"../etc/passwd"}`,
		`{"name":"half","value":"` + canary + `","env_name":"HALF","file_path":"../half"}`,
		`{"name":"relative","value":"` + canary + `","file_path":"etc/x"}`,
		`{"name":"nul-path","value":"` + canary + `","file_path":"~/a\u0000b"}`,
		`{"name":"tilde-user","value":"` + canary + `","file_path":"~root/.ssh/authorized_keys"}`,
		`{"name":"long-path","value":"` + canary + `","file_path":"~/` + strings.Repeat("p", 4096) + `"}`,
		`{"name":"dir-path","value":"` + canary + `","file_path":"~/"}`,
		`{"name":"env-path","value":"` + canary + `","env_name":"PATH"}`,
		`{"name":"env-courier","value":"` + canary + `","env_name":"COURIER"}`,
		`{"name":"env-ld","value":"` + canary + `","env_name":"LD_PRELOAD"}`,
		`{"name":"env-equals","value":"` + canary + `","env_name":"A=B"}`,
		`{"name":"env-long","value":"` + canary + `","env_name":"` + strings.Repeat("E", 257) + `"}`,
		`{"name":"env-binary","value_base64":"` + bin + `","env_name":"BINENV"}`,
		`{"name":"env-nul","value":"` + canary + `\u0000","env_name":"NULENV"}`,
		`{"name":"../name","value":"` + canary + `","file_path":"~/n"}`,
		`{"name":"","value":"` + canary + `","file_path":"~/empty-name"}`,
		`{"name":"no-value","value":"","file_path":"~/no-value"}`,
		`{"name":"huge-value","value":"` + strings.Repeat("v", 24*1024+1) + `","file_path":"~/huge"}`,
	}
	home, out := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "f"), []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	before := tree(t, home)
	// One valid secret among them is still applied: a secret is refused on
	// its own, so one bad entry cannot hold back the others.
	good := `{"name":"good","value":"fine","file_path":"` + filepath.Join(out, "good") + `"}`
	b := newBadCP(t, goodManifest(t, out), []byte(`{"secrets":[`+strings.Join(append(entries, good), ",")+`]}`))
	_, logs, stop := startAgentAt(t, b.URL(), home, nil)
	eventually(t, "the startup script", func() bool { return readFile(filepath.Join(out, "env.out")) != "" })
	stop()

	_, applies := b.state()
	if len(applies) == 0 {
		t.Fatal("no apply reported")
	}
	var rep proto.ApplyReport
	if err := json.Unmarshal([]byte(applies[0]), &rep); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, o := range rep.Outcomes {
		if o.Secret == "good" {
			if o.Outcome != proto.OutcomeWritten || readFile(filepath.Join(out, "good")) != "fine" {
				t.Errorf("the valid secret: outcome %q", o.Outcome)
			}
			continue
		}
		if o.Outcome != proto.OutcomeFailed || o.Error == "" {
			t.Errorf("secret %q: outcome %q (%q), want failed with a reason", o.Secret, o.Outcome, o.Error)
		}
		failed++
	}
	if failed != len(entries) {
		t.Errorf("%d outcomes for %d secrets", failed, len(entries))
	}
	for name, text := range map[string]string{"log": logs.String(), "apply report": applies[0],
		"script env": readFile(filepath.Join(out, "env.out"))} {
		if strings.Contains(text, canary) {
			t.Errorf("the canary reached the %s", name)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"secret not applied"`); n != len(entries) {
		t.Errorf("%d secrets logged as not applied at error level, want %d", n, len(entries))
	}
	for _, env := range []string{"HALF=", "BINENV=", "NULENV=", "COURIER=", "A=B"} {
		if strings.Contains(readFile(filepath.Join(out, "env.out")), "\n"+env) {
			t.Errorf("a refused env secret was set: %s", env)
		}
	}
	sameTree(t, before, tree(t, home))
	for _, p := range []string{filepath.Join(filepath.Dir(home), "etc"), "etc", filepath.Join(home, "..", "etc", "passwd")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("a relative path was written: %s exists", p)
		}
	}
}

// TestBinaryFileSecretByteExact: a value that is not UTF-8 text (NUL,
// invalid sequences) travels from the store through the real agent
// endpoint and lands on disk byte for byte.
func TestBinaryFileSecretByteExact(t *testing.T) {
	bin := "\xff\xfeA\x80\x00" + canary + "\x00\xc3"
	c := newCP(t, nil)
	c.setSecrets(store.Secret{Name: "keytab", Value: []byte(bin), FilePath: "~/.keytab"},
		store.Secret{Name: "env-bin", Value: []byte(bin), EnvName: "ENV_BIN"})
	c.up()
	home, logs, stop := startAgent(t, c)
	eventually(t, "the keytab", func() bool { return readFile(filepath.Join(home, ".keytab")) != "" })
	stop()
	if got := readFile(filepath.Join(home, ".keytab")); got != bin {
		t.Fatalf("the file holds %d bytes, not the %d stored", len(got), len(bin))
	}
	if !strings.Contains(logs.String(), "env-bin") || strings.Contains(logs.String(), canary) {
		t.Error("the refused env secret is not named in the log, or the log holds the value")
	}
}
