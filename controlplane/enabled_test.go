package controlplane

import (
	"strings"
	"testing"
)

// TestSecretEnabled: enabled defaults to true, a PATCH with only enabled is
// an update that changes nothing else, a wrong type changes nothing, and a
// paused secret keeps its env name and file path reserved.
func TestSecretEnabled(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	base := "/api/v2/users/me/secrets"

	var s SecretResponse
	ts.want(ts.do("POST", base, p.alice, secretBody("on", "env_name", "ON_TOKEN", "file_path", "~/on")), 201).json(t, &s)
	if !s.Enabled {
		t.Fatalf("create without enabled = %+v, want enabled", s)
	}
	ts.want(ts.do("POST", base, p.alice, map[string]any{"name": "off", "value": canary, "env_name": "OFF_TOKEN",
		"enabled": false}), 201).json(t, &s)
	if s.Enabled {
		t.Fatalf("create with enabled false = %+v", s)
	}

	var u SecretResponse
	ts.want(ts.do("PATCH", base+"/on", p.alice, map[string]any{"enabled": false}), 200).json(t, &u)
	if u.Enabled || u.EnvName != "ON_TOKEN" || u.FilePath != "~/on" {
		t.Fatalf("after pausing: %+v", u)
	}
	stored, _ := ts.store.GetSecret(t.Context(), p.aliceID, "on")
	if got, _ := ts.sealer.Open(stored.Value, sealAD(p.aliceID, "on")); string(got) != canary {
		t.Fatal("pausing changed the stored value")
	}
	// A PATCH without enabled leaves it as it is.
	ts.want(ts.do("PATCH", base+"/on", p.alice, map[string]any{"description": "paused"}), 200).json(t, &u)
	if u.Enabled {
		t.Fatalf("a PATCH without enabled resumed the secret: %+v", u)
	}
	// A wrong type is a 400 naming the field, and changes nothing.
	e := ts.want(ts.do("PATCH", base+"/on", p.alice, `{"enabled":"yes","description":"x"}`), 400).errResp(t)
	if !strings.Contains(e.Message, "enabled") {
		t.Fatalf("wrong type: %+v", e)
	}
	ts.want(ts.do("GET", base+"/on", p.alice, nil), 200).json(t, &u)
	if u.Enabled || u.Description != "paused" {
		t.Fatalf("a refused PATCH changed the secret: %+v", u)
	}
	// Reserved: another secret may not take a paused one's targets.
	ts.want(ts.do("POST", base, p.alice, secretBody("thief", "env_name", "ON_TOKEN")), 409)
	ts.want(ts.do("POST", base, p.alice, secretBody("thief", "file_path", "~/on")), 409)

	ts.want(ts.do("PATCH", base+"/on", p.alice, map[string]any{"enabled": true}), 200).json(t, &u)
	if !u.Enabled || u.Description != "paused" {
		t.Fatalf("after resuming: %+v", u)
	}
	var list []SecretResponse
	ts.want(ts.do("GET", base, p.alice, nil), 200).json(t, &list)
	if len(list) != 2 || list[0].Name != "off" || list[0].Enabled || !list[1].Enabled {
		t.Fatalf("list = %+v", list)
	}
	// Admins read it too, and may not change it.
	ts.want(ts.do("PATCH", "/api/v2/users/alice/secrets/on", p.admin, map[string]any{"enabled": false}), 403)
}

// TestSecretEnabledCountsTowardCaps: a paused secret still counts.
func TestSecretEnabledCountsTowardCaps(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Limits.MaxSecrets = 1 })
	p := ts.setup()
	ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, map[string]any{"name": "a", "value": canary, "enabled": false}), 201)
	e := ts.want(ts.do("POST", "/api/v2/users/me/secrets", p.alice, secretBody("b")), 400).errResp(t)
	if !strings.Contains(e.Message, "limit") {
		t.Fatalf("cap refusal: %+v", e)
	}
}

func TestBatchEnabled(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	url := "/api/v2/users/me/secrets/batch"
	var out []SecretResponse
	ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "json",
		"content": `[{"name":"j1","value":"` + canary + `","enabled":false},{"name":"j2","value":"x"}]`}), 201).json(t, &out)
	if len(out) != 2 || out[0].Enabled || !out[1].Enabled {
		t.Fatalf("json batch = %+v", out)
	}
	ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "yaml",
		"content": "- name: y1\n  value: " + canary + "\n  enabled: false\n- name: y2\n  value: x\n"}), 201).json(t, &out)
	if len(out) != 2 || out[0].Enabled || !out[1].Enabled {
		t.Fatalf("yaml batch = %+v", out)
	}
	ts.want(ts.do("POST", url, p.alice, map[string]string{"format": "env", "content": "E1=" + canary}), 201).json(t, &out)
	if len(out) != 1 || !out[0].Enabled {
		t.Fatalf("env batch = %+v", out)
	}
}
