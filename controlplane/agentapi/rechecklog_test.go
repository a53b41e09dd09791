package agentapi

import (
	"testing"

	"github.com/courierhq/courier/controlplane/notify"
)

// TestRecheckLogConcerns: a connect is concerned by the rechecks begun
// since its lookup that named its owner, were a resync, or are forgotten;
// not by those that named only others, nor by those begun before.
func TestRecheckLogConcerns(t *testing.T) {
	var l recheckLog
	if l.last() != 0 || l.concerns(0, "alice") {
		t.Fatal("an empty log concerns someone")
	}
	before := l.begin(notify.Batch{Users: []string{"alice"}})
	seq := l.last()
	if seq != before {
		t.Fatalf("last = %d, want %d", seq, before)
	}
	l.begin(notify.Batch{Users: []string{"bob", "carol"}})
	l.begin(notify.Batch{Users: nil})
	for _, tc := range []struct {
		owner string
		want  bool
	}{
		{"alice", false}, // named only before the lookup
		{"bob", true},
		{"carol", true},
		{"dave", false},
		{"", false},
	} {
		if got := l.concerns(seq, tc.owner); got != tc.want {
			t.Errorf("concerns(%d, %q) = %v, want %v", seq, tc.owner, got, tc.want)
		}
	}
	if !l.concerns(0, "alice") {
		t.Error("a recheck naming alice after 0 does not concern her")
	}

	seq = l.last()
	l.begin(notify.Batch{Resync: true})
	if !l.concerns(seq, "dave") {
		t.Error("a resync does not concern everyone")
	}

	// Forgotten: more rechecks than the log holds, none naming erin.
	seq = l.last()
	for range recheckLogSize + 1 {
		l.begin(notify.Batch{Users: []string{"bob"}})
	}
	if !l.concerns(seq, "erin") {
		t.Error("rechecks the log no longer holds are assumed not to concern erin")
	}
	// Exactly as many as it holds are still known.
	seq = l.last()
	for range recheckLogSize {
		l.begin(notify.Batch{Users: []string{"bob"}})
	}
	if l.concerns(seq, "erin") {
		t.Error("a full log of rechecks naming bob concerns erin")
	}
}
