package controlplane

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/seal"
)

// binCanary is a value no JSON string can carry: invalid UTF-8 and NUL
// around the canary.
const binCanary = "\xff\xfeA\x80\x00" + canary + "\x00\xc3"

var binCanary64 = base64.StdEncoding.EncodeToString([]byte(binCanary))

// withEncryption runs f against a server without and with encryption at rest.
func withEncryption(t *testing.T, f func(t *testing.T, ts *testServer)) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			var mutate []func(*Config)
			if enc {
				keyFile := filepath.Join(t.TempDir(), "courier.key")
				if err := seal.GenerateKeyFile(keyFile); err != nil {
					t.Fatal(err)
				}
				mutate = append(mutate, func(c *Config) { c.EncryptionKeyFile = keyFile })
			}
			f(t, newTestServer(t, mutate...))
		})
	}
}

// storedValue opens the stored value of alice's secret name.
func (ts *testServer) storedValue(userID, name string) string {
	ts.t.Helper()
	s, err := ts.store.GetSecret(ts.t.Context(), userID, name)
	if err != nil {
		ts.t.Fatal(err)
	}
	v, err := ts.sealer.Open(s.Value, sealAD(userID, name))
	if err != nil {
		ts.t.Fatal(err)
	}
	return string(v)
}

// TestBinaryValueByteExact: value_base64 stores any bytes exactly (create,
// PATCH, batch json and yaml), and the agent endpoint delivers them exactly.
func TestBinaryValueByteExact(t *testing.T) {
	withEncryption(t, func(t *testing.T, ts *testServer) {
		p := ts.setup()
		base := "/api/v2/users/me/secrets"
		ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "keytab", "value_base64": binCanary64,
			"file_path": "~/.keytab"}), 201)
		if got := ts.storedValue(p.aliceID, "keytab"); got != binCanary {
			t.Fatalf("stored %d bytes, not the %d sent", len(got), len(binCanary))
		}
		// PATCH with value_base64, then back to text with value.
		other := "\x00\x01\x02" + canary
		ts.want(ts.do("PATCH", base+"/keytab", p.alice, map[string]string{
			"value_base64": base64.StdEncoding.EncodeToString([]byte(other))}), 200)
		if got := ts.storedValue(p.aliceID, "keytab"); got != other {
			t.Fatal("PATCH value_base64 not stored exactly")
		}
		ts.want(ts.do("PATCH", base+"/keytab", p.alice, map[string]string{"value_base64": binCanary64}), 200)
		// A NUL in a text value is fine for a file-only secret.
		ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "nul", "value": "a\x00" + canary}), 201)
		if got := ts.storedValue(p.aliceID, "nul"); got != "a\x00"+canary {
			t.Fatal("NUL value not stored exactly")
		}
		// Batch, json and yaml.
		ts.want(ts.do("POST", base+"/batch", p.alice, map[string]string{"format": "json",
			"content": `[{"name":"der","value_base64":"` + binCanary64 + `","file_path":"/tmp/der"}]`}), 201)
		ts.want(ts.do("POST", base+"/batch", p.alice, map[string]string{"format": "yaml",
			"content": "- name: p12\n  value_base64: " + binCanary64 + "\n  file_path: ~/.p12\n"}), 201)
		for _, n := range []string{"der", "p12"} {
			if got := ts.storedValue(p.aliceID, n); got != binCanary {
				t.Fatalf("batch %s: not stored exactly", n)
			}
		}

		// The agent endpoint delivers the bytes in value_base64.
		var created CreatedWorkspaceResponse
		ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice"}), 201).json(t, &created)
		agent := dialAgent(t, ts, created.AgentToken)
		var secrets proto.SecretsResponse
		if st := agent.call(t, "GET", proto.PathSecrets, nil, &secrets); st != 200 {
			t.Fatalf("secrets: %d", st)
		}
		if len(secrets.Secrets) != 4 {
			t.Fatalf("agent got %d secrets, want 4", len(secrets.Secrets))
		}
		for _, s := range secrets.Secrets {
			v, err := s.RawValue()
			want := binCanary
			if s.Name == "nul" {
				want = "a\x00" + canary
				if s.ValueBase64 != "" {
					t.Errorf("a UTF-8 value was sent as base64")
				}
			}
			if err != nil || v != want {
				t.Errorf("%s: delivered value differs (%v)", s.Name, err)
			}
		}
	})
}

// TestBinaryValueRefused: the refusals of defect 1, each a 400 naming the
// problem, none changing the stored set.
func TestBinaryValueRefused(t *testing.T) {
	withEncryption(t, func(t *testing.T, ts *testServer) {
		p := ts.setup()
		base := "/api/v2/users/me/secrets"
		ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "bin", "value_base64": binCanary64, "file_path": "~/bin"}), 201)
		ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "text", "value": canary, "file_path": "~/text"}), 201)
		ts.want(ts.do("POST", base, p.alice, map[string]string{"name": "envtext", "value": canary, "env_name": "ENV_TEXT"}), 201)
		before := ts.snapshot(p.aliceID)

		cases := []struct {
			name, method, path string
			body               any
			field, msg         string
		}{
			{"invalid UTF-8 in value", "POST", base, "{\"name\":\"x\",\"value\":\"\xff\xfe" + canary + "\"}", "", "not valid UTF-8"},
			{"invalid UTF-8 in name", "POST", base, "{\"name\":\"x\xc3\",\"value\":\"" + canary + "\"}", "", "not valid UTF-8"},
			{"lone surrogate escape", "POST", base, `{"name":"x","value":"\ud800` + canary + `"}`, "", "surrogate"},
			{"invalid UTF-8 in patch", "PATCH", base + "/text", "{\"value\":\"\x80" + canary + "\"}", "", "value_base64"},
			{"both value and value_base64", "POST", base, map[string]string{"name": "x", "value": canary, "value_base64": binCanary64}, "value_base64", "together with value"},
			{"both in patch", "PATCH", base + "/text", map[string]string{"value": canary, "value_base64": binCanary64}, "value_base64", "together"},
			{"bad base64", "POST", base, map[string]string{"name": "x", "value_base64": "!!" + canary}, "value_base64", "not valid base64 at byte 0"},
			{"unpadded base64", "POST", base, map[string]string{"name": "x", "value_base64": "QUJD" + "QQ"}, "value_base64", "padding"},
			{"empty base64", "POST", base, map[string]string{"name": "x", "value_base64": ""}, "value", "required"},
			{"binary with env", "POST", base, map[string]string{"name": "x", "value_base64": binCanary64, "env_name": "X"}, "value", "can only be delivered as a file"},
			{"NUL with env", "POST", base, map[string]string{"name": "x", "value": canary + "\x00", "env_name": "X"}, "value", "NUL"},
			{"base64 NUL with env", "POST", base, map[string]string{"name": "x", "value_base64": base64.StdEncoding.EncodeToString([]byte(canary + "\x00")), "env_name": "X"}, "value", "NUL"},
			{"patch env onto binary", "PATCH", base + "/bin", map[string]string{"env_name": "BIN"}, "value", "can only be delivered as a file"},
			{"patch binary value onto env secret", "PATCH", base + "/envtext", map[string]string{"value_base64": binCanary64}, "value", "can only be delivered as a file"},
			{"patch NUL value onto env secret", "PATCH", base + "/envtext", map[string]string{"value": "a\x00"}, "value", "NUL byte (at byte 1)"},
			{"patch env and binary value onto text", "PATCH", base + "/text", map[string]string{"env_name": "T", "value_base64": binCanary64}, "value", "can only be delivered as a file"},
			{"batch json binary with env", "POST", base + "/batch", map[string]string{"format": "json",
				"content": `[{"name":"y","value_base64":"` + binCanary64 + `","env_name":"Y"}]`}, "value", "entry 1"},
			{"batch yaml both", "POST", base + "/batch", map[string]string{"format": "yaml",
				"content": "- name: y\n  value: v\n  value_base64: " + binCanary64 + "\n"}, "value_base64", "entry 1"},
			{"bare COURIER env", "POST", base, map[string]string{"name": "x", "value": canary, "env_name": "Courier"}, "env_name", "COURIER is reserved"},
			{"patch bare COURIER env", "PATCH", base + "/text", map[string]string{"env_name": "COURIER"}, "env_name", "COURIER is reserved"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := ts.want(ts.do(c.method, c.path, p.alice, c.body), 400)
				e := r.errResp(t)
				if c.field != "" && (len(e.Validations) == 0 || e.Validations[0].Field != c.field) {
					t.Fatalf("validations %+v, want field %q (message %q)", e.Validations, c.field, e.Message)
				}
				if !strings.Contains(e.Message, c.msg) {
					t.Fatalf("message %q does not contain %q", e.Message, c.msg)
				}
				if strings.Contains(string(r.body), binCanary64) {
					t.Fatal("the error quotes the base64 value")
				}
			})
		}
		ts.wantSnapshot(p.aliceID, before)
		// The PATCH that adds an env target to a text value still works.
		ts.want(ts.do("PATCH", base+"/text", p.alice, map[string]string{"env_name": "TEXT"}), 200)
	})
}
