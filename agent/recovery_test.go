package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/internal/faultproxy"
)

// Recovery under network faults: a real agent talks to an in-process
// control plane through a fault proxy (internal/faultproxy). The agent must
// recover by itself once a fault clears, never leave a half-written file,
// never run a startup script before its first apply, and never spin.

// Backoff of the agents in these tests; noSpinBound derives its limit from
// them.
const (
	recInitialBackoff = 40 * time.Millisecond
	recMaxBackoff     = 200 * time.Millisecond
)

// Canned answers of a broken control plane (or of whatever answers in its
// place: a proxy, a load balancer with no backend).
var (
	reply503     = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunavailable")
	replyGarbage = []byte("\x00\xff\xfe garbage that is not HTTP \x80\x81\r\n\r\n\x16\x03\x01")
)

// startAgentVia starts an in-process agent that reaches the control plane
// at url, with fast backoff and keepalives so that dead connections are
// noticed quickly.
func startAgentVia(t *testing.T, url string) (home string, logs *syncBuf, stop func()) {
	t.Helper()
	return startAgentToken(t, url, token)
}

func startAgentToken(t *testing.T, url, token string) (home string, logs *syncBuf, stop func()) {
	t.Helper()
	home, logs = t.TempDir(), &syncBuf{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)
	a, err := New(Config{URL: url, Token: token, Home: home, DataDir: filepath.Join(t.TempDir(), "data"),
		Shell: "/bin/sh", Logger: zap.New(core), Base: []string{"PATH=" + os.Getenv("PATH")},
		InitialBackoff: recInitialBackoff, MaxBackoff: recMaxBackoff, WaitingLogAfter: 20 * time.Millisecond,
		KeepaliveInterval: 100 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, RequestTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = a.Close()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return home, logs, stop
}

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// bigValue is a file secret's value large enough (16 KiB) that a fault
// after 8 KiB of the control plane's answer lands inside the secrets
// response, after the upgrade and the manifest.
func bigValue(tag byte) string {
	return canary + string(bytes.Repeat([]byte{tag}, 16<<10))
}

// tornReader polls path until stopped and records every content that is
// neither absent nor one of the allowed values in full.
type tornReader struct {
	stop  chan struct{}
	done  chan struct{}
	reads atomic.Int64
	mu    sync.Mutex
	bad   []string
}

func watchFile(path string, allowed ...string) *tornReader {
	r := &tornReader{stop: make(chan struct{}), done: make(chan struct{})}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err == nil {
				r.reads.Add(1)
				if !ok[string(b)] {
					r.mu.Lock()
					r.bad = append(r.bad, fmt.Sprintf("%d bytes starting %.40q", len(b), b))
					r.mu.Unlock()
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return r
}

// check stops the reader and fails t if it ever saw a torn file.
func (r *tornReader) check(t *testing.T) {
	t.Helper()
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatalf("a reader saw %d half-written or foreign contents, first: %s", len(r.bad), r.bad[0])
	}
	if r.reads.Load() == 0 {
		t.Fatal("the reader never read the file")
	}
}

// fault is one way the path to the control plane breaks.
type fault struct {
	name string
	set  func(p *faultproxy.Proxy)
	// clear undoes set; nil means the agent must apply with the fault on.
	clear func(p *faultproxy.Proxy)
	// log is a fragment the agent's log must hold while the fault is on
	// ("" for none): proof the fault hit where it was meant to.
	log string
}

var faults = []fault{
	{name: "cut mid-fetch", log: "fetching secrets",
		set: func(p *faultproxy.Proxy) { p.SetTruncate(8 << 10) }, clear: func(p *faultproxy.Proxy) { p.SetTruncate(0) }},
	{name: "stall mid-fetch", log: "fetching secrets",
		set: func(p *faultproxy.Proxy) { p.SetStallAfter(8 << 10) }, clear: func(p *faultproxy.Proxy) { p.SetStallAfter(0) }},
	{name: "reset during the websocket upgrade", log: "connection reset",
		set: func(p *faultproxy.Proxy) { p.SetResetUpgrade(true) }, clear: func(p *faultproxy.Proxy) { p.SetResetUpgrade(false) }},
	{name: "control plane answers 503", log: "503",
		set: func(p *faultproxy.Proxy) { p.SetReply(reply503) }, clear: func(p *faultproxy.Proxy) { p.SetReply(nil) }},
	{name: "control plane answers garbage", log: "cannot reach the control plane",
		set: func(p *faultproxy.Proxy) { p.SetReply(replyGarbage) }, clear: func(p *faultproxy.Proxy) { p.SetReply(nil) }},
	{name: "connections refused", log: "cannot reach the control plane",
		set: func(p *faultproxy.Proxy) { p.SetRefuse(true) }, clear: func(p *faultproxy.Proxy) { p.SetRefuse(false) }},
	{name: "slow network", set: func(p *faultproxy.Proxy) { p.SetDelay(20 * time.Millisecond) }},
}

// TestRecoversFromFaults applies v1, changes the secret to v2, breaks the
// path and forces a reconnect: while the fault lasts the agent retries and
// the file keeps v1 in full; once it clears the agent applies v2 by itself.
// A reader polls the file throughout and must only ever see v1 or v2 whole.
func TestRecoversFromFaults(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			c := newCP(t, []proto.Script{{Name: "count", Script: `echo run >> ~/runs`}})
			v1, v2 := bigValue('a'), bigValue('b')
			c.setSecrets(store.Secret{Name: "big", Value: []byte(v1), FilePath: "~/.config/big"})
			c.up()
			p := startProxy(t, c.addr)
			home, logs, stop := startAgentVia(t, p.URL())
			file := filepath.Join(home, ".config", "big")
			eventually(t, "the first apply", func() bool { return readFile(file) == v1 })
			r := watchFile(file, v1, v2)

			c.setSecrets(store.Secret{Name: "big", Value: []byte(v2), FilePath: "~/.config/big"})
			f.set(p)
			base := p.Accepted()
			p.Cut()
			if f.clear != nil {
				eventually(t, "three attempts under the fault", func() bool { return p.Accepted() >= base+3 })
				if f.log != "" && !strings.Contains(logs.String(), f.log) {
					t.Errorf("the agent log does not mention %q while the fault is on", f.log)
				}
				if got := readFile(file); got != v1 {
					t.Fatalf("the file changed while no apply could succeed (%d bytes)", len(got))
				}
				f.clear(p)
				p.Cut() // connections stalled under the fault end now
			}
			eventually(t, "the apply after the fault", func() bool { return readFile(file) == v2 })
			r.check(t)
			if n := strings.Count(readFile(filepath.Join(home, "runs")), "run"); n != 1 {
				t.Errorf("startup script ran %d times, want once", n)
			}
			stop()
			if strings.Contains(logs.String(), canary) || strings.Contains(logs.String(), token) {
				t.Error("the agent log holds a value or the token")
			}
		})
	}
}

// TestBlackholedControlPlane: the control plane accepts TCP and never
// answers (a stalled proxy, a dead NAT entry). The agent must give up on
// the attempt and try again rather than wait forever, and apply once the
// path works.
func TestBlackholedControlPlane(t *testing.T) {
	c := newCP(t, nil)
	c.setSecrets(store.Secret{Name: "s", Value: []byte(canary), FilePath: "~/s"})
	c.up()
	p := startProxy(t, c.addr)
	p.Stall()
	home, _, _ := startAgentVia(t, p.URL())
	eventually(t, "a second attempt after a blackholed first one", func() bool { return p.Accepted() >= 2 })
	if _, err := os.Stat(filepath.Join(home, "s")); err == nil {
		t.Fatal("applied through a stalled path")
	}
	p.Resume()
	eventually(t, "the apply", func() bool { return readFile(filepath.Join(home, "s")) == canary })
}
