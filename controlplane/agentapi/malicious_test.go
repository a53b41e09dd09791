package agentapi_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// A malicious agent (a compromised workspace holds its agent token) sends
// output lines far longer than an honest agent's (which splits at 16 KiB),
// with made-up streams and sources. The control plane stores each line cut
// to 16 KiB, a stream of stdout or stderr, and only sources of the
// workspace's template; the per-workspace bounds are in startlogs_test.go.
// An oversize request is refused whole.
func TestMaliciousAgentOutputIsBounded(t *testing.T) {
	f := setup(t, false)
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	huge := strings.Repeat("é", 128<<10) // 256 KiB of two-byte runes
	for i := range 3 {
		if err := s.ReportLogs(ctx, proto.LogReport{Source: "script:s", Lines: []proto.LogLine{
			{At: time.Now(), Stream: strings.Repeat("x", 1000), Text: huge},
			{Source: strings.Repeat("s", 64<<10), Text: "made-up source"}}}); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	stored, err := f.st.WorkspaceLogs(ctx, f.ws.ID, store.LogQuery{})
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored %d lines, %v; want the 3 of script:s", len(stored), err)
	}
	for _, l := range stored {
		if len(l.Text) > 16<<10 || l.Source != "script:s" || l.Stream != "stdout" {
			t.Fatalf("stored a line of %d bytes (source %.20q, stream %q)", len(l.Text), l.Source, l.Stream)
		}
		if !utf8.ValidString(l.Text) {
			t.Fatal("cutting split a UTF-8 sequence")
		}
	}
	// Over the 4 MiB body cap: refused, nothing kept.
	err = s.ReportLogs(ctx, proto.LogReport{Source: "script:s", Lines: []proto.LogLine{{Text: strings.Repeat("y", proto.MaxBodyBytes)}}})
	if err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("oversize report: %v, want a 413 refusal", err)
	}
	if after, _ := f.st.WorkspaceLogs(ctx, f.ws.ID, store.LogQuery{}); len(after) != len(stored) {
		t.Fatalf("an oversize report added %d lines", len(after)-len(stored))
	}
	// net/http holds a connection it refused for a too-large body for half
	// a second before closing it (its RST-avoidance delay, which starts
	// just after the answer is written); wait for that goroutine so goleak
	// does not count it.
	time.Sleep(600 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(allStacks(), "closeWriteAndWait") {
		if time.Now().After(deadline) {
			t.Fatal("the refused connection was never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
