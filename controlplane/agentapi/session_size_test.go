package agentapi

import (
	"testing"
	"unsafe"
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
