package agentapi

import (
	"testing"
	"unsafe"

	"github.com/courierhq/courier/controlplane/store"
)

// A session is allocated for every connected agent and kept as long as it
// is connected: it must fit the runtime's 256-byte size class (the next one
// is 288 bytes, 32 more for each of tens of thousands of agents). A field
// that does not fit should go where an idle session does not keep it.
func TestSessionFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 256 {
		t.Fatalf("session is %d bytes, over the 256-byte size class", n)
	}
}

// What a session keeps for its first manifest holds the owner's name and
// ID, never the rest of the user's row.
func TestConnectReadKeepsTheOwnersIdentityOnly(t *testing.T) {
	u := store.User{ID: "u1", Username: "dev", Email: "dev@example.com", PasswordHash: []byte("$2a$10$canary")}
	got := newConnectRead(store.Workspace{ID: "w1"}, u).owner
	if got.ID != "u1" || got.Username != "dev" || got.Email != "" || got.PasswordHash != nil {
		t.Fatalf("kept %+v, want the ID and username alone", got)
	}
}
