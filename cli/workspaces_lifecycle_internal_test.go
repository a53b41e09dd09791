package cli

import (
	"strings"
	"testing"
	"time"
)

// TestAgentLifetimeFlag: days, durations and both; "0" and "never" only
// where no expiry is allowed (the server's default); hostile input refused.
func TestAgentLifetimeFlag(t *testing.T) {
	for _, c := range []struct {
		in      string
		neverOK bool
		want    time.Duration
		bad     bool
	}{
		{"30d", false, 30 * 24 * time.Hour, false},
		{"12h", false, 12 * time.Hour, false},
		{"1d12h", false, 36 * time.Hour, false},
		{"0", true, 0, false},
		{"never", true, 0, false},
		{"0", false, 0, true},
		{"never", false, 0, true},
		{"30", true, 0, true},
		{"-1d", true, 0, true},
		{"1s", true, 0, true},
		{"", true, 0, true},
		{"d", true, 0, true},
		{strings.Repeat("9", 30) + "d", true, 0, true},
		{"1d\x00", true, 0, true},
	} {
		d := time.Duration(-1)
		err := agentLifetimeFlag{d: &d, neverOK: c.neverOK}.Set(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q (neverOK %t): accepted as %v", c.in, c.neverOK, d)
			}
			continue
		}
		if err != nil || d != c.want {
			t.Errorf("%q: %v, %v; want %v", c.in, d, err, c.want)
		}
	}
}

// TestServerAgentTokenLifetimeFromEnv: the flag is set by its variable.
func TestServerAgentTokenLifetimeFromEnv(t *testing.T) {
	cmd := newServerCommand()
	env := map[string]string{"COURIER_AGENT_TOKEN_LIFETIME": "90d"}
	if err := applyEnv(cmd.Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, serverEnv); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("agent-token-lifetime").Value.String(); got != "90d" {
		t.Fatalf("--agent-token-lifetime from the environment = %q", got)
	}
	env["COURIER_AGENT_TOKEN_LIFETIME"] = "soon"
	if err := applyEnv(newServerCommand().Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, serverEnv); err == nil {
		t.Fatal("a bad lifetime in the environment was accepted")
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-2*time.Hour), now.Add(72*time.Hour)
	for _, c := range []struct {
		at   *time.Time
		want []string
	}{
		{nil, []string{"never expires"}},
		{&past, []string{"expired", "2026-12-04T10:00:00Z", "rotate-token"}},
		{&now, []string{"expired"}},
		{&future, []string{"expires in", "2026-12-07T12:00:00Z"}},
	} {
		got := tokenExpiry(now, c.at)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("tokenExpiry(%v) = %q, want it to say %q", c.at, got, w)
			}
		}
	}
}
