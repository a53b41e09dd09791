package audit

import (
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"
)

// A flood of refusals from a few sources becomes one record per source
// and reason per window, counting them; keys beyond MaxKeys fold into one
// record without a source; the next window starts from nothing.
func TestTallyFoldsAFlood(t *testing.T) {
	var (
		mu  sync.Mutex
		out []Record
	)
	tl, err := NewTally(TallyConfig{MaxKeys: 2, Emit: func(r Record) { mu.Lock(); out = append(out, r); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	drafts := 0
	refusal := func(src, reason string, i int) (TallyKey, time.Time, func() Record) {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		return TallyKey{Source: src, Action: "session.refused", Reason: reason}, at, func() Record {
			drafts++ // under the Tally's lock
			return Record{Time: at, Source: src, Action: "session.refused", Reason: reason, Outcome: Denied,
				RequestID: "req", Details: Details(map[string]any{"credential": "header"})}
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				tl.Add(refusal("192.0.2.1", "unknown token", g*250+i))
			}
		}()
	}
	wg.Wait()
	tl.Add(refusal("192.0.2.2", "unknown token", 5))
	tl.Add(refusal("192.0.2.3", "unknown token", 7)) // third key: overflow
	tl.Add(refusal("192.0.2.4", "unknown token", 9)) // overflow too
	tl.Add(refusal("192.0.2.1", "unknown token", -3))
	tl.Flush()
	tl.Flush() // nothing held: nothing emitted
	if drafts != 3 {
		t.Errorf("%d records drafted for 1004 decisions of 3 keys, want 3", drafts)
	}

	type details struct {
		Count      int    `json:"count"`
		First      string `json:"first"`
		Last       string `json:"last"`
		Credential string `json:"credential"`
		Other      bool   `json:"other_sources"`
	}
	got := map[string]details{}
	for _, r := range out {
		var d details
		if err := json.Unmarshal(r.Details, &d); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[r.Source]; dup {
			t.Fatalf("two records for source %q", r.Source)
		}
		if !r.Time.Equal(mustTime(t, d.First)) || r.RequestID != "req" || r.Outcome != Denied {
			t.Errorf("record %+v: its time is not its first decision's", r)
		}
		got[r.Source] = d
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := map[string]details{
		"192.0.2.1": {Count: 1001, First: t0.Add(-3 * time.Millisecond).Format(time.RFC3339Nano), Last: t0.Add(999 * time.Millisecond).Format(time.RFC3339Nano), Credential: "header"},
		"192.0.2.2": {Count: 1, First: t0.Add(5 * time.Millisecond).Format(time.RFC3339Nano), Last: t0.Add(5 * time.Millisecond).Format(time.RFC3339Nano), Credential: "header"},
		"":          {Count: 2, First: t0.Add(7 * time.Millisecond).Format(time.RFC3339Nano), Last: t0.Add(9 * time.Millisecond).Format(time.RFC3339Nano), Credential: "header", Other: true},
	}
	if len(got) != len(want) {
		t.Fatalf("records for sources %q, want 3", keys)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("source %q: %+v, want %+v", k, got[k], w)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestTallyConfigValidate(t *testing.T) {
	if _, err := NewTally(TallyConfig{}); err == nil {
		t.Fatal("a Tally without Emit was made")
	}
	if _, err := NewTally(TallyConfig{Emit: func(Record) {}, Window: -time.Second}); err == nil {
		t.Fatal("a negative window was accepted")
	}
}
