// Package audit builds, chains, exports and verifies the control plane's
// audit records: who did what to which resource, from where, with what
// outcome. A record never holds a secret value, a token or a password.
//
// Records form one hash chain per database: each carries the SHA-256 of its
// canonical encoding and of the previous record's hash (Hash). The stores
// append records and assign sequence numbers and hashes inside their write
// transactions (see Pending); Verify walks the chain and names the first
// record that was edited, removed or reordered.
package audit

import (
	"encoding/json"
	"errors"
	"time"
)

var (
	// ErrBadFilter is wrapped by Filter.Validate's errors.
	ErrBadFilter = errors.New("bad audit filter")
	// ErrClosed is returned by a Batcher's Add after Close.
	ErrClosed = errors.New("audit batcher closed")
)

// Actor kinds.
const (
	ActorUser   = "user"
	ActorAgent  = "agent"
	ActorSystem = "system"
	// ActorAnonymous is a caller not (yet) authenticated, e.g. a failed
	// sign-in; Name then holds the account name tried, if any.
	ActorAnonymous = "anonymous"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Actor is who acted.
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Target is what was acted on. OwnerID is the user whose resource it is
// (a secret's or workspace's owner, the user themselves), so that each user
// can read the records about their own things.
type Target struct {
	Kind    string `json:"kind"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	OwnerID string `json:"owner_id,omitempty"`
}

// Record is one audit record. Seq, PrevHash and Hash are set by the store
// when it appends the record to the chain.
type Record struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     Actor     `json:"actor"`
	Source    string    `json:"source,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Outcome   string    `json:"outcome"`
	// Reason says why a failure or denial happened (an API error message,
	// which never quotes a value).
	Reason string `json:"reason,omitempty"`
	// Details is a JSON object (or empty): which fields changed, counts.
	// Kept as the exact bytes hashed.
	Details   json.RawMessage `json:"details,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Replica   string          `json:"replica,omitempty"`
	PrevHash  []byte          `json:"prev_hash"`
	Hash      []byte          `json:"hash"`
}

// Head is the newest record's sequence number and hash (0 and nil for an
// empty chain).
type Head struct {
	Seq  int64  `json:"seq"`
	Hash []byte `json:"hash"`
}

// State is what a store knows of its chain besides the records: the head,
// and the checkpoint left by retention (the last pruned record's seq and
// hash; zero when nothing was pruned), from which verification starts.
type State struct {
	Head       Head `json:"head"`
	Checkpoint Head `json:"checkpoint"`
}

// Details builds a record's Details from a map; nil for an empty map.
func Details(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m) // map keys are sorted: one encoding
	if err != nil {
		return nil
	}
	return b
}

// Change is one changed field in Details: old and new for fields whose
// values are not secret, or just Changed for a value.
type Change struct {
	Old     any  `json:"old,omitempty"`
	New     any  `json:"new,omitempty"`
	Changed bool `json:"changed"`
}
