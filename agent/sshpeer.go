package agent

import (
	"net"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

// peerConn is an SSH stream whose addresses are those the control plane
// saw (proto.SSHPeer), so the session's SSH_CLIENT and SSH_CONNECTION name
// the real client, as sshd's do.
type peerConn struct {
	net.Conn
	remote, local net.Addr
}

func (c peerConn) RemoteAddr() net.Addr { return c.remote }
func (c peerConn) LocalAddr() net.Addr  { return c.local }

// withSSHPeer reads st's proto.SSHPeer header (within 30 s) and returns st
// with those addresses; an address the header leaves empty stays the
// stream's own.
func withSSHPeer(st net.Conn) (net.Conn, error) {
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	p, err := proto.ReadSSHPeer(st)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, err
	}
	pc := peerConn{Conn: st, remote: st.RemoteAddr(), local: st.LocalAddr()}
	if a, err := net.ResolveTCPAddr("tcp", p.Client); err == nil && p.Client != "" {
		pc.remote = a
	}
	if a, err := net.ResolveTCPAddr("tcp", p.Server); err == nil && p.Server != "" {
		pc.local = a
	}
	return pc, nil
}
