package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/faultproxy"
)

// Waiting for the control plane: startup scripts hold until the first
// apply, and the agent retries at the pace its backoff sets, never faster.

// blocking is a sequence of faults that each keep the agent from
// applying. Each step sets its fault before clearing the previous one, so
// the path is never whole between steps. The sequence starts from a proxy
// that refuses connections and ends with one that answers 503.
var blocking = []struct {
	name string
	step func(p *faultproxy.Proxy)
}{
	{"connections refused", func(p *faultproxy.Proxy) { p.SetRefuse(true) }},
	{"cut mid-fetch", func(p *faultproxy.Proxy) { p.SetTruncate(8 << 10); p.SetRefuse(false) }},
	{"stall mid-fetch", func(p *faultproxy.Proxy) { p.SetStallAfter(8 << 10); p.SetTruncate(0) }},
	{"reset during the upgrade", func(p *faultproxy.Proxy) { p.SetResetUpgrade(true); p.SetStallAfter(0) }},
	{"garbage", func(p *faultproxy.Proxy) { p.SetReply(replyGarbage); p.SetResetUpgrade(false) }},
	{"503", func(p *faultproxy.Proxy) { p.SetReply(reply503) }},
}

// TestScriptsWaitThroughFaults: the startup script records whether the
// secret file exists when it runs. Through a series of faults at boot it
// must not run at all; after the first apply it runs once and sees the file.
func TestScriptsWaitThroughFaults(t *testing.T) {
	c := newCP(t, []proto.Script{{Name: "seen", Script: `if [ -f ~/.config/big ]; then echo yes; else echo no; fi >> ~/seen`}})
	c.setSecrets(store.Secret{Name: "big", Value: []byte(bigValue('c')), FilePath: "~/.config/big", EnvName: "BIG"})
	c.up()
	p := startProxy(t, c.addr)
	blocking[0].step(p)
	home, logs, _ := startAgentVia(t, p.URL())
	seen := filepath.Join(home, "seen")
	for _, f := range blocking {
		f.step(p)
		base := p.Accepted()
		p.Cut()
		eventually(t, "two attempts under "+f.name, func() bool { return p.Accepted() >= base+2 })
		if _, err := os.Stat(seen); err == nil {
			t.Fatalf("the startup script ran before the first apply (under %s): %q", f.name, readFile(seen))
		}
	}
	if !strings.Contains(logs.String(), "waiting for secrets from the control plane") {
		t.Error("the agent did not log that scripts wait for secrets")
	}
	p.SetReply(nil)
	eventually(t, "the startup script", func() bool { return readFile(seen) != "" })
	if got := readFile(seen); got != "yes\n" {
		t.Fatalf("the script saw the secret file: %q, want yes", got)
	}
}

// noSpinBound is the most connection attempts an agent may make in window
// w: each wait of the backoff is at least half its interval (jitter 0.5),
// intervals start at InitialBackoff and double up to MaxBackoff, and the
// backoff is not reset within a test (StableAfter is a minute). One more
// for an attempt in flight at each edge of the window.
func noSpinBound(w time.Duration) int64 {
	var sum time.Duration
	n := int64(1)
	for cur := recInitialBackoff; ; n++ {
		lo := cur / 2
		if sum+lo > w {
			break
		}
		sum += lo
		cur = min(cur*2, recMaxBackoff)
	}
	return n + 1
}

// TestNoSpinWhileWaiting counts the agent's connection attempts at the
// proxy over a window for every fault that keeps it from applying, and
// checks them against the bound the backoff allows; it must also keep
// trying (at least two attempts).
func TestNoSpinWhileWaiting(t *testing.T) {
	const window = time.Second
	bound := noSpinBound(window)
	c := newCP(t, nil)
	c.setSecrets(store.Secret{Name: "big", Value: []byte(bigValue('d')), FilePath: "~/big"})
	c.up()
	p := startProxy(t, c.addr)
	blocking[0].step(p)
	home, _, _ := startAgentVia(t, p.URL())
	for _, f := range blocking {
		f.step(p)
		p.Cut()
		begin := p.Accepted()
		time.Sleep(window) // the window over which attempts are counted
		n := p.Accepted() - begin
		least := int64(2)
		if f.name == "stall mid-fetch" {
			least = 1 // each attempt hangs until the keepalive gives up on it
		}
		if n > bound || n < least {
			t.Errorf("%s: %d connection attempts in %v, want %d..%d (backoff %v..%v)", f.name, n, window, least, bound,
				recInitialBackoff, recMaxBackoff)
		}
		t.Logf("%s: %d attempts in %v (bound %d)", f.name, n, window, bound)
	}
	if _, err := os.Stat(filepath.Join(home, "big")); err == nil {
		t.Fatal("the agent applied through a broken path")
	}
}

// TestRejectedTokenWaitsLongest: a token the control plane refuses will not
// start working by retrying, so the agent waits its longest backoff
// between attempts. The 401 keeps the HTTP connection alive and the agent
// reuses it, so attempts are counted in its log, not at the proxy.
func TestRejectedTokenWaitsLongest(t *testing.T) {
	const window = 1500 * time.Millisecond
	c := newCP(t, nil)
	c.up()
	p := startProxy(t, c.addr)
	_, logs, _ := startAgentToken(t, p.URL(), "not-the-token-0123456789")
	refusals := func() int64 {
		return int64(strings.Count(logs.String(), `"msg":"the control plane refused the agent token`) +
			strings.Count(logs.String(), `"msg":"the agent token is still refused"`))
	}
	eventually(t, "the first refusal", func() bool { return refusals() > 0 })
	begin := refusals()
	time.Sleep(window) // the window over which attempts are counted
	n := refusals() - begin
	if bound := int64(window/recMaxBackoff) + 2; n > bound || n < 2 {
		t.Fatalf("%d attempts in %v with a rejected token, want 2..%d (one per %v)", n, window, bound, recMaxBackoff)
	}
	if strings.Contains(logs.String(), "not-the-token") {
		t.Error("the token appears in the log")
	}
}
