package cli

import (
	"testing"
	"time"
)

func TestMaxTokenLifetimeFlag(t *testing.T) {
	cmd := newServerCommand()
	f := cmd.Flags().Lookup("max-token-lifetime")
	if f == nil {
		t.Fatal("no --max-token-lifetime")
	}
	if f.DefValue != "90d" {
		t.Fatalf("default %q, want 90d", f.DefValue)
	}
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"30", 0, false},
		{"-1d", 0, false},
		{"0d", 0, false},
		{"forever", 0, false},
	} {
		var d time.Duration
		err := lifetimeFlag{&d}.Set(c.in)
		if (err == nil) != c.ok || d != c.want {
			t.Errorf("Set(%q) = %v, %v", c.in, d, err)
		}
	}
	// The environment variable sets it when the flag is absent.
	var d time.Duration
	cmd = newServerCommand()
	fs := cmd.Flags()
	fs.Var(lifetimeFlag{&d}, "x-lifetime", "")
	if err := applyEnv(fs, func(k string) (string, bool) { return "7d", k == "COURIER_X" }, []envBinding{{"x-lifetime", "COURIER_X"}}); err != nil || d != 7*24*time.Hour {
		t.Fatalf("from the environment: %v %v", d, err)
	}
	if err := applyEnv(cmd.Flags(), func(k string) (string, bool) { return "nope", k == "COURIER_MAX_TOKEN_LIFETIME" }, serverEnv); err == nil {
		t.Fatal("a bad $COURIER_MAX_TOKEN_LIFETIME was accepted")
	}
}
