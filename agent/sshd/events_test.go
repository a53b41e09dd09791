package sshd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"

	"github.com/courierhq/courier/agent/proto"
)

// eventLog collects the events a Server reports.
type eventLog struct {
	mu  sync.Mutex
	evs []proto.SSHEvent
}

func (l *eventLog) add(ev proto.SSHEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

// kinds returns "kind target" of each event, in order.
func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.evs))
	for i, ev := range l.evs {
		out[i] = strings.TrimSpace(ev.Kind + " " + ev.Target)
	}
	return out
}

func (l *eventLog) all() []proto.SSHEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]proto.SSHEvent(nil), l.evs...)
}

func TestEventsOfForwardsAndSFTP(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	dir, err := os.MkdirTemp("", "sshd-ev-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// ssh -L, two connections to one target: one event.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	for range 2 {
		c, err := client.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := roundTrip(t, c, "forwarded-canary-data"); got != "FORWARDED-CANARY-DATA" {
			t.Fatalf("echo = %q", got)
		}
		c.Close()
	}
	// ssh -L to a socket.
	sock := filepath.Join(dir, "app.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, uln)
	c, err := client.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	c.Close()
	// ssh -R, TCP and socket.
	rl, err := client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	remoteSock := filepath.Join(dir, "fwd.sock")
	url, err := client.ListenUnix(remoteSock)
	if err != nil {
		t.Fatal(err)
	}
	defer url.Close()
	// sftp.
	sc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Getwd(); err != nil {
		t.Fatal(err)
	}
	sc.Close()

	want := []string{
		proto.SSHForwardLocal + " " + ln.Addr().String(),
		proto.SSHForwardUnixLocal + " " + sock,
		fmt.Sprintf("%s 127.0.0.1:%d", proto.SSHForwardRemote, rl.Addr().(*net.TCPAddr).Port),
		proto.SSHForwardUnixRemote + " " + remoteSock,
		proto.SSHSFTP,
	}
	if got := h.events.kinds(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	for _, ev := range h.events.all() {
		if ev.User != "coder" || ev.Client == "" || ev.At.IsZero() {
			t.Errorf("event %+v: want user coder, a client address and a time", ev)
		}
		if strings.Contains(fmt.Sprint(ev), "CANARY") || strings.Contains(fmt.Sprint(ev), "canary") {
			t.Errorf("forwarded data in an event: %+v", ev)
		}
	}
}

func TestEventsNotForRefusedForwards(t *testing.T) {
	h := newHarness(t)
	h.srv.SetPolicy(Policy{DisableForwarding: true})
	client := h.pipeClient(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln)
	if _, err := client.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("a local forward was allowed with forwarding off")
	}
	if _, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("a remote forward was allowed with forwarding off")
	}
	// A failed dial is not an opened forward either.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	h.srv.SetPolicy(Policy{})
	if _, err := client.Dial("tcp", addr); err == nil {
		t.Fatal("dial of a closed port succeeded")
	}
	if got := h.events.kinds(); len(got) != 0 {
		t.Fatalf("events of refused or failed forwards: %q", got)
	}
}
