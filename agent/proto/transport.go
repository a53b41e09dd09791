package proto

import (
	"io"
	"time"

	"github.com/hashicorp/yamux"
)

// Transport settings both sides use. Keepalives are what detect a dead
// connection (a laptop lid closed, a NAT entry dropped): a ping is sent every
// KeepaliveInterval and the session closes when one is not answered within
// ConnectionWriteTimeout, so a dead peer is noticed within about
// KeepaliveInterval + ConnectionWriteTimeout.
const (
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
)

// DefaultRequestTimeout is how long an agent waits, by default, for its
// websocket upgrade to be answered and for each protocol request. The
// control plane's wait in its admission line stays well under it, so an
// agent in line is answered (let in, or 503 with Retry-After) before it
// gives up.
const DefaultRequestTimeout = 30 * time.Second

// YamuxConfig returns the yamux configuration for either side. Zero
// durations take the defaults above. yamux's own logging is discarded: the
// callers log session errors themselves with zap.
func YamuxConfig(keepalive, writeTimeout time.Duration) *yamux.Config {
	if keepalive <= 0 {
		keepalive = DefaultKeepaliveInterval
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepalive
	c.ConnectionWriteTimeout = writeTimeout
	c.StreamOpenTimeout = writeTimeout + keepalive
	c.LogOutput = io.Discard
	return c
}
