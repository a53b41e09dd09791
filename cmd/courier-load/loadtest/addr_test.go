package loadtest

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeLoopbackAddrBelowEphemeral: the addresses handed out are on
// loopback, free, and below the ephemeral range, so no connection of the
// run can take one while its server is down.
func TestFreeLoopbackAddrBelowEphemeral(t *testing.T) {
	hi := ephemeralStart()
	for range 50 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(port)
		if host != "127.0.0.1" {
			t.Fatalf("%s: not loopback", addr)
		}
		if hi-minStaticPort >= 1000 && (n < minStaticPort || n >= hi) {
			t.Fatalf("%s: port outside [%d, %d)", addr, minStaticPort, hi)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s: not free: %v", addr, err)
		}
		_ = ln.Close()
	}
}
