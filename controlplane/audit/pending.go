package audit

import (
	"context"
	"sync"
)

// Pending holds the records of one change, to be appended by the store in
// the same transaction as the change: no change without its record, no
// record without its change. A request builds one (NewPending), fills it as
// it learns what it acts on, and passes InTx(ctx) to the one store write
// that makes the change. The store appends the records only when that
// write succeeds, then marks them written; a caller that finds them not
// written after the write (Written) records the failure instead.
//
// A Pending is safe for concurrent use.
type Pending struct {
	// mu guards the fields that follow.
	mu      sync.Mutex
	recs    []Record
	written bool
}

// NewPending returns a Pending holding recs.
func NewPending(recs ...Record) *Pending { return &Pending{recs: recs} }

// Update calls fn with the first record (the change's own), before it is
// written; after, it does nothing.
func (p *Pending) Update(fn func(r *Record)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.written && len(p.recs) > 0 {
		fn(&p.recs[0])
	}
}

// Add appends more records to be written with the change (e.g. one per
// secret of a batch).
func (p *Pending) Add(recs ...Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.written {
		p.recs = append(p.recs, recs...)
	}
}

// Records returns a copy of the records.
func (p *Pending) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.recs...)
}

// Written reports whether a store appended the records.
func (p *Pending) Written() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.written
}

// MarkWritten is called by a store after the transaction holding the
// records committed.
func (p *Pending) MarkWritten() {
	p.mu.Lock()
	p.written = true
	p.mu.Unlock()
}

type ctxKey int

const (
	keyDraft ctxKey = iota
	keyArmed
)

// WithDraft returns ctx carrying p for the request's code to fill; stores
// do not see it until InTx.
func WithDraft(ctx context.Context, p *Pending) context.Context {
	return context.WithValue(ctx, keyDraft, p)
}

// Draft returns the Pending of ctx's request, or nil.
func Draft(ctx context.Context) *Pending {
	p, _ := ctx.Value(keyDraft).(*Pending)
	return p
}

// InTx returns ctx under which a store write appends ctx's draft records
// in its own transaction. Without a draft it returns ctx.
func InTx(ctx context.Context) context.Context {
	p := Draft(ctx)
	if p == nil {
		return ctx
	}
	return context.WithValue(ctx, keyArmed, p)
}

// WithRecords returns ctx under which a store write appends recs in its
// own transaction, and the Pending that tells whether it did.
func WithRecords(ctx context.Context, recs ...Record) (context.Context, *Pending) {
	p := NewPending(recs...)
	return context.WithValue(ctx, keyArmed, p), p
}

// ToWrite returns the records a store write under ctx must append in its
// transaction, and the Pending to mark after commit; nil when none. Records
// already written (a second write under the same ctx) are not returned.
func ToWrite(ctx context.Context) (*Pending, []Record) {
	p, _ := ctx.Value(keyArmed).(*Pending)
	if p == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written || len(p.recs) == 0 {
		return nil, nil
	}
	return p, append([]Record(nil), p.recs...)
}

// Armed returns the Pending a store write under ctx appends, or nil; a
// store uses it to fill in what only it knows (Update), such as the old
// and new targets of an updated secret.
func Armed(ctx context.Context) *Pending {
	p, _ := ctx.Value(keyArmed).(*Pending)
	return p
}
