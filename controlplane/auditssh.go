package controlplane

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
)

// SSH sessions through the control plane in the audit log: ssh.open when
// the websocket is up (a refusal is recorded by audited like any route),
// ssh.close when it ends, with its duration and the bytes each way. The
// bytes are SSH's own, encrypted end to end between the client and the
// agent, so the control plane cannot see what flows inside.

// sshOpened records the session's opening and returns the function that
// records its end.
func (a *api) sshOpened(r *http.Request) func(c *countingConn) {
	p := audit.Draft(r.Context())
	if p == nil {
		return func(*countingConn) {}
	}
	open := p.Records()[0]
	open.Outcome = audit.Success
	p.MarkWritten() // recorded here, not again by audited
	a.record(open)
	start := a.cfg.now()
	return func(c *countingConn) {
		end := open
		end.Action, end.Time = actSSHClose, a.cfg.stamp()
		end.Details = audit.Details(map[string]any{
			"duration_seconds":  int64(a.cfg.now().Sub(start) / time.Second),
			"bytes_from_client": c.read.Load(), "bytes_to_client": c.written.Load(),
		})
		a.record(end)
	}
}

// countingConn counts the bytes read and written.
type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}
