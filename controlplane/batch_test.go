package controlplane

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseEnvBatch(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    map[string]string // KEY → value
		errPart string
	}{
		{"plain", "A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}, ""},
		{"comments and blanks", "# header\n\n  A=1  \n   # indented comment\n", map[string]string{"A": "1"}, ""},
		{"export prefix", "export A=1\nexport   B=2", map[string]string{"A": "1", "B": "2"}, ""},
		{"inline comment", "A=1 # note\nB=x#y", map[string]string{"A": "1", "B": "x#y"}, ""},
		{"single quotes literal", `A='a \n $B # not comment'`, map[string]string{"A": `a \n $B # not comment`}, ""},
		{"double quotes escapes", `A="line1\nline2 \"q\" \\ \t"`, map[string]string{"A": "line1\nline2 \"q\" \\ \t"}, ""},
		{"double quotes multi-line", "A=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nB=2", map[string]string{"A": "-----BEGIN KEY-----\nabc\n-----END KEY-----", "B": "2"}, ""},
		{"crlf", "A=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}, ""},
		{"equals in value", "A=b=c", map[string]string{"A": "b=c"}, ""},
		{"comment after quote", `A="x" # c`, map[string]string{"A": "x"}, ""},
		{"no equals", "A=1\nJUSTKEY\n", nil, "line 2: is not KEY=VALUE"},
		{"bad key", "1A=x", nil, "line 1 (1A)"},
		{"reserved key", "PATH=/bin", nil, "reserved"},
		{"empty key", "=x", nil, "KEY is empty"},
		{"unclosed double", "A=\"abc\nB=2", nil, "no closing quote"},
		{"unclosed single", "A='abc", nil, "no closing quote"},
		{"junk after quote", `A="x" y`, nil, "after the closing quote"},
		{"bad escape", `A="\q"`, nil, "unknown escape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseEnvBatch(c.content)
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("err %v, want %q", err, c.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d entries, want %d", len(got), len(c.want))
			}
			for _, e := range got {
				if e.req.Value != c.want[e.req.Name] || e.req.EnvName != e.req.Name {
					t.Errorf("%s: value %q env %q, want %q", e.req.Name, e.req.Value, e.req.EnvName, c.want[e.req.Name])
				}
			}
		})
	}
}

func TestBatchEndpoint(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	url := "/api/v2/users/me/secrets/batch"
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("existing", "env_name", "EXISTING")), 201)

	okCases := []struct {
		name, format, content string
		names                 []string
	}{
		{"env", "env", "export ENV_ONE=" + canary + "\nENV_TWO='" + canary + "'\n", []string{"ENV_ONE", "ENV_TWO"}},
		{"json", "json", `[{"name":"j1","value":"` + canary + `","description":"d","env_name":"J1"},{"name":"j2","value":"v","file_path":"~/.j2"}]`, []string{"j1", "j2"}},
		{"yaml", "yaml", "- name: y1\n  value: " + canary + "\n  env_name: Y1\n- name: y2\n  value: |\n    multi\n    line\n  file_path: /etc/y2\n", []string{"y1", "y2"}},
	}
	for _, c := range okCases {
		t.Run(c.name, func(t *testing.T) {
			var got []SecretResponse
			ts.want(ts.do("POST", url, p.alice, map[string]string{"format": c.format, "content": c.content}), 201).json(t, &got)
			if len(got) != len(c.names) {
				t.Fatalf("got %+v", got)
			}
			for i, n := range c.names {
				if got[i].Name != n || got[i].ID == "" {
					t.Fatalf("entry %d = %+v, want %s", i, got[i], n)
				}
			}
		})
	}
	stored, err := ts.store.GetSecret(t.Context(), p.aliceID, "y2")
	if err != nil || string(stored.Value) != "multi\nline\n" {
		t.Fatalf("yaml block value stored as %q, %v", stored.Value, err)
	}

	badCases := []struct {
		name, format, content string
		status                int
		msg                   string
	}{
		{"unknown format", "toml", "A=1", 400, "unknown batch format"},
		{"empty", "env", "# nothing\n", 400, "holds no secrets"},
		{"one bad entry", "env", "GOOD_1=x\nBAD-KEY=y\n", 400, "line 2 (BAD-KEY)"},
		{"dup in batch", "json", `[{"name":"d1","value":"x","env_name":"DUP"},{"name":"d2","value":"y","env_name":"DUP"}]`, 400, `entry 2 ("d2"): env_name "DUP" is also used by entry 1`},
		{"dup name in batch", "env", "SAME=1\nSAME=2", 400, "also used by line 1"},
		{"clash with existing", "env", "NEW_ONE=1\nEXISTING=2\n", 409, "EXISTING"},
		{"json unknown field", "json", `[{"name":"a","value":"b","valeu":"c"}]`, 400, `unknown field "valeu"`},
		{"json not a list", "json", `{"name":"a"}`, 400, "not a JSON array"},
		{"yaml unknown key", "yaml", "- name: a\n  vaule: " + canary + "\n", 400, "line 2"},
		{"yaml bad", "yaml", "- name: [\n", 400, "not a YAML list"},
		{"entry missing value", "json", `[{"name":"a"}]`, 400, `entry 1 ("a")`},
		{"over count cap", "env", manyEnv(60), 400, "secrets per user"},
	}
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			e := ts.want(ts.do("POST", url, p.alice, map[string]string{"format": c.format, "content": c.content}), c.status).errResp(t)
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q, want it to contain %q", e.Message, c.msg)
			}
		})
	}
	// All or nothing: no entry of a refused batch exists.
	var list []SecretResponse
	ts.want(ts.do("GET", "/api/v2/users/me/secrets", p.alice, nil), 200).json(t, &list)
	if len(list) != 7 {
		names := []string{}
		for _, s := range list {
			names = append(names, s.Name)
		}
		t.Fatalf("secrets after batches: %v, want existing + 6", names)
	}
}

func manyEnv(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "MANY_%d=v\n", i)
	}
	return b.String()
}
