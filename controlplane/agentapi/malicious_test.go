package agentapi_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/agent/proto"
)

// A malicious agent (a compromised workspace holds its agent token) sends
// output lines far longer than an honest agent's (which splits at 16 KiB).
// The control plane keeps at most its LogLines lines per workspace, each
// cut to 16 KiB, so what it retains stays bounded (before, LogLines lines
// of up to 4 MiB each); an oversize request is refused whole.
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
		if err := s.ReportLogs(ctx, proto.LogReport{Source: strings.Repeat("s", 64<<10), Lines: []proto.LogLine{
			{At: time.Now(), Stream: strings.Repeat("x", 1000), Text: huge}}}); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	retained := 0
	for _, l := range f.srv.RecentLogs(f.ws.ID) {
		retained += len(l.Text) + len(l.Source) + len(l.Stream)
		if len(l.Text) > 16<<10 || len(l.Source) > 256 || len(l.Stream) > 16 {
			t.Fatalf("retained a line of %d bytes (source %d, stream %d)", len(l.Text), len(l.Source), len(l.Stream))
		}
		if !utf8.ValidString(l.Text) {
			t.Fatal("cutting split a UTF-8 sequence")
		}
	}
	if retained == 0 || retained > 3*(16<<10+256+16) {
		t.Fatalf("retained %d bytes for 3 lines", retained)
	}
	// Over the 4 MiB body cap: refused, nothing kept.
	before := len(f.srv.RecentLogs(f.ws.ID))
	err = s.ReportLogs(ctx, proto.LogReport{Source: "script:s", Lines: []proto.LogLine{{Text: strings.Repeat("y", proto.MaxBodyBytes)}}})
	if err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("oversize report: %v, want a 413 refusal", err)
	}
	if after := len(f.srv.RecentLogs(f.ws.ID)); after != before {
		t.Fatalf("an oversize report added %d lines", after-before)
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
