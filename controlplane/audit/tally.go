package audit

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// TallyConfig configures a Tally.
type TallyConfig struct {
	// Emit receives each window's records (a Batcher's Add, say). It is
	// called without the Tally's lock held. Required.
	Emit func(Record)
	// Window is how long decisions of one key are folded into one record.
	// Default 1 minute.
	Window time.Duration
	// MaxKeys bounds the distinct keys held in one window; decisions of
	// further keys fold into one record per action and reason with an
	// empty source and "other_sources": true. Default 10000.
	MaxKeys int
}

// Validate checks c after defaults.
func (c TallyConfig) Validate() error {
	if c.Emit == nil {
		return errors.New("audit: TallyConfig.Emit is required")
	}
	if c.Window <= 0 || c.MaxKeys <= 0 {
		return errors.New("audit: TallyConfig needs a positive Window and MaxKeys")
	}
	return nil
}

func (c TallyConfig) withDefaults() TallyConfig {
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 10000
	}
	return c
}

// Tally folds repeated access decisions that change nothing and can come in
// floods (requests refused for an unknown token) into one record per
// source address, action and reason per window, whose details hold how
// many there were ("count") and the first and last one's times ("first",
// "last"). The record is the window's first decision of its key, so it
// keeps that one's user agent and request ID. Memory is bounded by MaxKeys
// records; Add never touches the database.
//
// NewTally starts nothing; Run emits every Window until its context ends,
// then emits what is left; Flush emits now. All are safe for concurrent
// use.
type Tally struct {
	cfg TallyConfig

	// mu guards the fields that follow.
	mu   sync.Mutex
	held map[tallyKey]*tallied
	keys int // distinct keys held (overflow entries not counted)
}

// TallyKey names one tallied record: a window's decisions with the same
// key share it. The record's Source, Action and Reason are the key's.
type TallyKey struct {
	Source, Action, Reason string
}

type tallyKey struct {
	TallyKey
	overflow bool
}

type tallied struct {
	rec         Record
	count       int
	first, last time.Time
}

// NewTally returns a Tally; it starts no goroutine (see Run).
func NewTally(cfg TallyConfig) (*Tally, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tally{cfg: cfg, held: map[tallyKey]*tallied{}}, nil
}

// Add counts a decision of key k at time at in k's record of the current
// window. draft builds that record (with the window's first decision's
// user agent, request ID and details) and is called only for the first
// decision of k in a window, so a flood costs a map lookup per decision.
func (t *Tally) Add(k TallyKey, at time.Time, draft func() Record) {
	key := tallyKey{TallyKey: k}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.held[key]
	if e == nil && t.keys >= t.cfg.MaxKeys {
		key = tallyKey{TallyKey: TallyKey{Action: k.Action, Reason: k.Reason}, overflow: true}
		e = t.held[key]
	}
	if e == nil {
		r := draft()
		r.Source, r.Action, r.Reason = key.Source, key.Action, key.Reason
		e = &tallied{rec: r, first: at, last: at}
		t.held[key] = e
		if !key.overflow {
			t.keys++
		}
	}
	e.count++
	if at.Before(e.first) {
		e.first = at
	}
	if at.After(e.last) {
		e.last = at
	}
}

// Flush emits the records held, ending the window.
func (t *Tally) Flush() {
	t.mu.Lock()
	held := t.held
	t.held, t.keys = map[tallyKey]*tallied{}, 0
	t.mu.Unlock()
	for k, e := range held {
		d := map[string]any{}
		if len(e.rec.Details) > 0 {
			_ = json.Unmarshal(e.rec.Details, &d)
		}
		d["count"] = e.count
		d["first"] = e.first.UTC().Format(time.RFC3339Nano)
		d["last"] = e.last.UTC().Format(time.RFC3339Nano)
		if k.overflow {
			d["other_sources"] = true
		}
		r := e.rec
		r.Time = e.first
		r.Details = Details(d)
		t.cfg.Emit(r)
	}
}

// Run emits the held records every Window until ctx ends, then once more.
func (t *Tally) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Window)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Flush()
			return nil
		case <-tick.C:
			t.Flush()
		}
	}
}
