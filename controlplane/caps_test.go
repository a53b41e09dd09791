package controlplane

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/courierhq/courier/inject"
)

// TestCapsAtLimitAndOneOver walks every cap of R9 with the default limits
// (50 secrets, 200 KiB in all, 24 KiB over env secrets, 24 KiB a value), to
// exactly the limit and then one byte (or one secret) over, with and
// without encryption at rest: the caps count stored bytes, so with
// encryption each value may hold inject.SealOverhead bytes fewer. Values sent
// as value_base64 count their raw bytes, not their base64 text. Every
// refusal is a 400 naming the cap and how far over, and changes nothing.
func TestCapsAtLimitAndOneOver(t *testing.T) {
	withEncryption(t, func(t *testing.T, ts *testServer) {
		p := ts.setup()
		secrets := "/api/v2/users/me/secrets"
		enc := ts.sealer.Encrypted()
		lim := inject.DefaultLimits()
		raw := func(stored int) int { return stored - inject.StoredSize(0, enc) } // raw bytes for a stored size
		val := func(n int) string { return canary + strings.Repeat("v", n-len(canary)) }
		refused := func(userID, token, method, path string, body any, want string) {
			t.Helper()
			before := ts.snapshot(userID)
			e := ts.want(ts.do(method, path, token, body), 400).errResp(t)
			if !strings.Contains(e.Message, want) {
				t.Fatalf("message %q does not say %q", e.Message, want)
			}
			ts.wantSnapshot(userID, before)
		}

		// Per value: at the cap, and one byte over (text and base64).
		perMax := raw(lim.MaxSecretBytes)
		refused(p.aliceID, p.alice, "POST", secrets, map[string]string{"name": "big", "value": val(perMax + 1), "env_name": "BIG"}, "1 over")
		bin := "\xff" + val(perMax)
		refused(p.aliceID, p.alice, "POST", secrets, map[string]string{"name": "big",
			"value_base64": base64.StdEncoding.EncodeToString([]byte(bin)), "file_path": "~/big"}, "1 over")
		ts.want(ts.do("POST", secrets, p.alice, map[string]string{"name": "env-0", "value": val(perMax), "env_name": "ENV_0"}), 201)
		refused(p.aliceID, p.alice, "PATCH", secrets+"/env-0", map[string]string{"value": val(perMax + 1)}, "1 over")

		// Env bytes: env-0 holds the whole env allowance; one more byte over
		// an env target is refused, on create and on PATCH adding a target.
		envOver := inject.StoredSize(1, enc)
		refused(p.aliceID, p.alice, "POST", secrets, map[string]string{"name": "env-1", "value": "x", "env_name": "ENV_1"},
			fmt.Sprintf("env-injected value bytes per user cap is %d bytes; this change would make it %d (%d over)",
				lim.MaxEnvBytes, lim.MaxEnvBytes+envOver, envOver))
		ts.want(ts.do("POST", secrets, p.alice, map[string]string{"name": "file-0", "value": "x", "file_path": "~/f0"}), 201)
		refused(p.aliceID, p.alice, "PATCH", secrets+"/file-0", map[string]string{"env_name": "FILE_0"}, "env-injected")
		ts.want(ts.do("DELETE", secrets+"/file-0", p.alice, nil), 204)

		// Total bytes: fill with file secrets of a full value each, then one
		// sized to land exactly on the cap, then one byte more.
		total := lim.MaxSecretBytes
		for i := 1; total+lim.MaxSecretBytes <= lim.MaxTotalBytes; i++ {
			v := "\x00" + val(perMax-1) // binary: goes as value_base64
			ts.want(ts.do("POST", secrets, p.alice, map[string]string{"name": fmt.Sprintf("file-%d", i),
				"value_base64": base64.StdEncoding.EncodeToString([]byte(v)), "file_path": fmt.Sprintf("~/f%d", i)}), 201)
			total += lim.MaxSecretBytes
		}
		rest := lim.MaxTotalBytes - total
		ts.want(ts.do("POST", secrets, p.alice, map[string]string{"name": "rest", "value": val(raw(rest)), "file_path": "~/rest"}), 201)
		refused(p.aliceID, p.alice, "POST", secrets, map[string]string{"name": "one-more", "value": "x"},
			fmt.Sprintf("value bytes per user cap is %d bytes; this change would make it %d (%d over)",
				lim.MaxTotalBytes, lim.MaxTotalBytes+envOver, envOver))
		refused(p.aliceID, p.alice, "PATCH", secrets+"/rest", map[string]string{"value": val(raw(rest) + 1)}, "(1 over)")
		// A batch that would cross the cap creates nothing.
		refused(p.aliceID, p.alice, "POST", secrets+"/batch", map[string]string{"format": "env", "content": "B1=x\n"}, "value bytes per user cap")

		// Secret count: bob fills to exactly 50 (by batch), then one more.
		var env strings.Builder
		for i := range lim.MaxSecrets + 1 {
			fmt.Fprintf(&env, "S%d=%s\n", i, canary)
		}
		lines := strings.SplitAfter(env.String(), "\n")
		refused(p.bobID, p.bob, "POST", secrets+"/batch", map[string]string{"format": "env", "content": env.String()},
			fmt.Sprintf("secrets per user cap is %d secrets; this change would make it %d (1 over)", lim.MaxSecrets, lim.MaxSecrets+1))
		ts.want(ts.do("POST", secrets+"/batch", p.bob, map[string]string{"format": "env",
			"content": strings.Join(lines[:lim.MaxSecrets], "")}), 201)
		refused(p.bobID, p.bob, "POST", secrets, map[string]string{"name": "fifty-one", "value": canary}, "(1 over)")
	})
}
