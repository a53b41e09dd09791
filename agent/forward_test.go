package agent

import (
	"encoding/base64"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

const fwdCanary = "fwd-canary-7Hq2"

func newTestForwarder() (*forwarder, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return newForwarder(func() *conn.Session { return nil }, zap.New(core)), logs
}

// TestForwarderMasks: a secret value, its base64 form and a value learnt
// at a later apply never reach the queue or the agent's log.
func TestForwarderMasks(t *testing.T) {
	f, logs := newTestForwarder()
	f.setSecrets([]string{fwdCanary, "tiny"})
	f.Log("script:a", "stdout", "token="+fwdCanary)
	f.Log("script:a", "stderr", "b64="+base64.StdEncoding.EncodeToString([]byte(fwdCanary)))
	f.setSecrets([]string{"second-canary-9"}) // a changed secret: both stay masked
	f.Log("app:web", "stdout", fwdCanary+" second-canary-9 tiny")
	want := []string{"token=***", "b64=***", "*** *** tiny"}
	if len(f.queue) != len(want) {
		t.Fatalf("queued %d lines, want %d", len(f.queue), len(want))
	}
	for i, w := range want {
		if f.queue[i].line.Text != w {
			t.Errorf("line %d: %q, want %q", i, f.queue[i].line.Text, w)
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, fwdCanary) || strings.Contains(e.Message, "second-canary") {
			t.Errorf("agent log holds a secret: %q", e.Message)
		}
	}
}

// TestForwarderBounds: past maxQueuedLines or maxQueuedBytes the oldest
// lines go, and the drop is counted.
func TestForwarderBounds(t *testing.T) {
	f, _ := newTestForwarder()
	for range maxQueuedLines + 5 {
		f.Log("script:a", "stdout", "x")
	}
	if len(f.queue) != maxQueuedLines || f.dropped != 5 {
		t.Fatalf("%d queued, %d dropped; want %d and 5", len(f.queue), f.dropped, maxQueuedLines)
	}
	big := strings.Repeat("y", 16<<10)
	for range 100 {
		f.Log("script:a", "stdout", big)
	}
	if f.bytes > maxQueuedBytes || f.queue[len(f.queue)-1].line.Text != big {
		t.Fatalf("%d bytes queued, bound %d", f.bytes, maxQueuedBytes)
	}
	total := 0
	for _, q := range f.queue {
		total += len(q.line.Text)
	}
	if total != f.bytes {
		t.Errorf("byte count %d, queue holds %d", f.bytes, total)
	}
}

func TestChunk(t *testing.T) {
	q := func(src string, n int) queued {
		return queued{source: src, line: proto.LogLine{Text: strings.Repeat("z", n)}}
	}
	cases := []struct {
		name    string
		batch   []queued
		perLine bool
		want    int
	}{
		{"one source", []queued{q("a", 1), q("a", 1)}, false, 2},
		{"source change, old control plane", []queued{q("a", 1), q("b", 1), q("a", 1)}, false, 1},
		{"source change, per-line sources", []queued{q("a", 1), q("b", 1), q("a", 1)}, true, 3},
		{"byte cap", []queued{q("a", flushBytes-1), q("a", 2)}, true, 1},
		{"one huge line still goes", []queued{q("a", 2*flushBytes)}, true, 1},
	}
	for _, tc := range cases {
		if got := chunk(tc.batch, tc.perLine); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestForwarderRunsKeepLatest(t *testing.T) {
	f, _ := newTestForwarder()
	f.Run(proto.Run{Source: "script:a", State: proto.RunRunning})
	f.Run(proto.Run{Source: "app:web", State: proto.RunRunning})
	f.Run(proto.Run{Source: "script:a", State: proto.RunSucceeded})
	if len(f.order) != 2 || f.order[0] != "script:a" || f.runs["script:a"].State != proto.RunSucceeded {
		t.Errorf("runs %v order %v", f.runs, f.order)
	}
}

// TestForwarderRequeue: lines of a failed request go back before those
// queued since, in order, within the bounds.
func TestForwarderRequeue(t *testing.T) {
	f, _ := newTestForwarder()
	f.Log("script:a", "stdout", "new")
	unsent := []queued{{source: "script:a", line: proto.LogLine{Text: "old1"}}, {source: "script:a", line: proto.LogLine{Text: "old2"}}}
	f.requeue(unsent)
	var got []string
	for _, q := range f.queue {
		got = append(got, q.line.Text)
	}
	if strings.Join(got, ",") != "old1,old2,new" || f.bytes != len("old1old2new") {
		t.Errorf("queue %v (%d bytes)", got, f.bytes)
	}
}
