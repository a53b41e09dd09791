package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func chain(n int) []Record {
	var (
		head Head
		out  []Record
	)
	for i := range n {
		r := Record{Time: time.Unix(int64(i), 0), Action: "x", Target: Target{Name: string(rune('a' + i))}}
		head = Chain(head, &r)
		out = append(out, r)
	}
	return out
}

func pageOf(recs []Record) Page {
	return func(_ context.Context, after int64, limit int) ([]Record, error) {
		var out []Record
		for _, r := range recs {
			if r.Seq > after && len(out) < limit {
				out = append(out, r)
			}
		}
		return out, nil
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base := Record{Time: time.Unix(1, 0), Actor: Actor{"user", "id", "n"}, Action: "a"}
	h := Hash(base, []byte("p"))
	for name, mod := range map[string]func(r *Record){
		"time":     func(r *Record) { r.Time = r.Time.Add(1) },
		"actor":    func(r *Record) { r.Actor.Name = "m" },
		"boundary": func(r *Record) { r.Actor.ID, r.Actor.Name = "idn", "" },
		"target":   func(r *Record) { r.Target.OwnerID = "o" },
		"details":  func(r *Record) { r.Details = []byte(`{}`) },
		"replica":  func(r *Record) { r.Replica = "r" },
	} {
		r := base
		mod(&r)
		if bytes.Equal(Hash(r, []byte("p")), h) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	if bytes.Equal(Hash(base, []byte("q")), h) {
		t.Error("changing the previous hash keeps the hash")
	}
}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func([]Record) []Record
		bad     int64
		problem string
	}{
		{"intact", func(r []Record) []Record { return r }, 0, ""},
		{"edited", func(r []Record) []Record { r[2].Target.Name = "z"; return r }, 3, ProblemEdited},
		{"rehashed", func(r []Record) []Record {
			r[2].Target.Name = "z"
			r[2].Hash = Hash(r[2], r[2].PrevHash)
			return r
		}, 3, ProblemEdited},
		{"removed", func(r []Record) []Record { return append(r[:1], r[2:]...) }, 2, ProblemRemoved},
		{"swapped", func(r []Record) []Record {
			r[1], r[2] = r[2], r[1]
			r[1].Seq, r[2].Seq = 2, 3
			return r
		}, 2, ProblemReordered},
		{"tail removed", func(r []Record) []Record { return r[:4] }, 5, ProblemRemoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := chain(5)
			st := State{Head: Head{Seq: 5, Hash: recs[4].Hash}}
			rep, err := Verify(context.Background(), st, pageOf(tc.mod(recs)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK != (tc.problem == "") || rep.BadSeq != tc.bad || rep.Problem != tc.problem {
				t.Fatalf("Verify = %+v, want bad %d %q", rep, tc.bad, tc.problem)
			}
		})
	}
}

func TestCleanKeepsStoresHonest(t *testing.T) {
	r := Record{Actor: Actor{Name: "a\x00b\xff" + strings.Repeat("é", 400)}}
	Chain(Head{}, &r)
	if strings.ContainsRune(r.Actor.Name, 0) || len(r.Actor.Name) > maxField || !strings.HasPrefix(r.Actor.Name, "ab\uFFFD") {
		t.Fatalf("cleaned name %q", r.Actor.Name)
	}
}

func TestBatcherFlushesOnCloseAndKeepsFailedBatches(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []Record
		fail = true
	)
	b, err := NewBatcher(BatcherConfig{MaxBatch: 2, Append: func(_ context.Context, rs []Record) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return errors.New("db down")
		}
		got = append(got, rs...)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := b.Add(Record{Seq: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.Flush(context.Background()) // fails: kept
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("appended %d records, want 5", len(got))
	}
	if err := b.Add(Record{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPendingWrittenOnce(t *testing.T) {
	ctx, p := WithRecords(context.Background(), Record{Action: "a"})
	if _, recs := ToWrite(ctx); len(recs) != 1 {
		t.Fatalf("ToWrite: %d records", len(recs))
	}
	p.MarkWritten()
	if _, recs := ToWrite(ctx); recs != nil {
		t.Fatal("records returned again after being written")
	}
	if ToWriteCtx := InTx(context.Background()); Armed(ToWriteCtx) != nil {
		t.Fatal("InTx without a draft armed something")
	}
}

// TestHashEncodingIsStable pins the chain's encoding: a record hashed by
// the first release must hash the same forever, or every database's chain
// would stop verifying. The value was computed by the original streaming
// implementation.
func TestHashEncodingIsStable(t *testing.T) {
	r := Record{Time: time.Date(2026, 5, 1, 10, 0, 0, 123, time.UTC), Actor: Actor{Kind: "user", ID: "u1", Name: "alice"},
		Source: "192.0.2.1", UserAgent: "curl/8", Action: "secret.update", Target: Target{Kind: "secret", ID: "s1", Name: "deploy-key", OwnerID: "u1"},
		Outcome: "success", Details: []byte(`{"changed":{"value":{"changed":true}}}`), RequestID: "req-1", Replica: "r1"}
	got := hex.EncodeToString(Hash(r, []byte("0123456789abcdef0123456789abcdef")))
	if want := "1933bf165fbf94cab499d75f6b91c893a0dd0707d3de0e5f96edb4a02260154f"; got != want {
		t.Fatalf("Hash = %s, want %s: the encoding changed", got, want)
	}
	// Past the stack buffer: a record near the fields' bound.
	long := r
	long.UserAgent, long.Reason = strings.Repeat("a", maxField), strings.Repeat("b", maxField)
	if bytes.Equal(Hash(long, nil), Hash(r, nil)) {
		t.Fatal("a long record hashed like a short one")
	}
}

// TestBatcherLogsAnOutageOnce: flushes that fail keep the records and log
// the failure once, not at every flush; the first flush that works writes
// them all and logs the end once.
func TestBatcherLogsAnOutageOnce(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	down := true
	var written []Record
	b, err := NewBatcher(BatcherConfig{Log: zap.New(core), Append: func(_ context.Context, rs []Record) error {
		if down {
			return errors.New("the database is unavailable")
		}
		written = append(written, rs...)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		if err := b.Add(Record{Action: fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		b.Flush(context.Background())
	}
	if n := logs.FilterMessageSnippet("could not write audit records").Len(); n != 1 {
		t.Fatalf("five failed flushes logged %d lines, want one", n)
	}
	down = false
	b.Flush(context.Background())
	b.Flush(context.Background())
	if len(written) != 3 {
		t.Fatalf("%d records written once the store is back, want 3", len(written))
	}
	if n := logs.FilterMessage("audit records are written again").Len(); n != 1 {
		t.Fatalf("the end of the outage logged %d times, want once", n)
	}
}
