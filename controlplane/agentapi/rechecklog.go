package agentapi

import (
	"sync"

	"github.com/courierhq/courier/controlplane/notify"
)

// recheckLogSize is how many rechecks a recheckLog remembers: far more
// than begin during one connect, even while every user's secrets change.
const recheckLogSize = 256

// recheckLog numbers the token rechecks (RecheckTokens) as they begin and
// remembers whom the last recheckLogSize of them named, so that a connect
// can tell whether one that began while it looked its token up concerned
// its owner (see recheckIfMissed). Without it every connect that saw any
// recheck begin — under a stream of secret changes, nearly every one —
// rechecked its owner: a scan of every session and a read of all the
// owner's workspaces, per connect.
type recheckLog struct {
	// mu guards the fields that follow.
	mu      sync.Mutex
	seq     uint64 // the newest recheck's number; 0 before any
	entries [recheckLogSize]recheckEntry
}

// recheckEntry is whom one recheck named.
type recheckEntry struct {
	resync bool
	users  map[string]struct{}
}

// begin records b as the next recheck and returns its number.
func (l *recheckLog) begin(b notify.Batch) uint64 {
	users := make(map[string]struct{}, len(b.Users))
	for _, u := range b.Users {
		users[u] = struct{}{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.entries[l.seq%recheckLogSize] = recheckEntry{resync: b.Resync, users: users}
	return l.seq
}

// last returns the newest recheck's number.
func (l *recheckLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// concerns reports whether a recheck numbered after seq may have concerned
// owner: one named them, was a resync, or is no longer remembered.
func (l *recheckLog) concerns(seq uint64, owner string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seq-seq > recheckLogSize {
		return true
	}
	for n := seq + 1; n <= l.seq; n++ {
		e := l.entries[n%recheckLogSize]
		if _, named := e.users[owner]; named || e.resync {
			return true
		}
	}
	return false
}
