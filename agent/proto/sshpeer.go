package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// StreamSSHPeer: an SSHPeer header, then the SSH protocol. The control
// plane opens it instead of StreamSSH to an agent that announced
// FeatureSSHPeer, so the SSH session's SSH_CLIENT and SSH_CONNECTION name
// the real client, as OpenSSH's sshd does.
const StreamSSHPeer byte = 0x03

// HeaderAgentFeatures lists, comma-separated, the optional protocol
// features the agent speaks (sent on the websocket upgrade). A control
// plane uses only the features an agent announced, so older agents keep
// working.
const HeaderAgentFeatures = "Courier-Agent-Features"

// FeatureSSHPeer: the agent understands StreamSSHPeer.
const FeatureSSHPeer = "ssh-peer"

// MaxSSHPeerBytes bounds the JSON of an SSHPeer header.
const MaxSSHPeerBytes = 512

// ErrBadSSHPeer is wrapped by ReadSSHPeer's failures.
var ErrBadSSHPeer = errors.New("bad ssh peer header")

// SSHPeer names the two ends of an SSH client's connection as the control
// plane saw them. Addresses are "host:port"; "" when unknown.
type SSHPeer struct {
	// Client is the SSH client's address (the X-Forwarded-For client
	// behind a trusted proxy).
	Client string `json:"client"`
	// Server is the control plane's address that the client's connection
	// reached.
	Server string `json:"server"`
}

// HasFeature reports whether a HeaderAgentFeatures value lists f.
func HasFeature(header, f string) bool {
	for _, v := range strings.Split(header, ",") {
		if strings.TrimSpace(v) == f {
			return true
		}
	}
	return false
}

// WriteSSHPeer writes p as a StreamSSHPeer header: a big-endian uint16
// length, then that many bytes of JSON. Addresses that are not host:port
// with a numeric port are sent as "".
func WriteSSHPeer(w io.Writer, p SSHPeer) error {
	p.Client, p.Server = validAddr(p.Client), validAddr(p.Server)
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if len(b) > MaxSSHPeerBytes {
		b, _ = json.Marshal(SSHPeer{})
	}
	buf := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// ReadSSHPeer reads a StreamSSHPeer header. An address that is not
// host:port with a numeric port reads as "".
func ReadSSHPeer(r io.Reader) (SSHPeer, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return SSHPeer{}, fmt.Errorf("%w: %w", ErrBadSSHPeer, err)
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size > MaxSSHPeerBytes {
		return SSHPeer{}, fmt.Errorf("%w: %d bytes, at most %d", ErrBadSSHPeer, size, MaxSSHPeerBytes)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return SSHPeer{}, fmt.Errorf("%w: %w", ErrBadSSHPeer, err)
	}
	var p SSHPeer
	if err := json.Unmarshal(b, &p); err != nil {
		return SSHPeer{}, fmt.Errorf("%w: %w", ErrBadSSHPeer, err)
	}
	p.Client, p.Server = validAddr(p.Client), validAddr(p.Server)
	return p, nil
}

// validAddr returns a if it is an IP address and numeric port, else "".
// The values end up in a shell's environment: nothing else may pass.
func validAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return ""
		}
	}
	if port == "" || len(port) > 5 {
		return ""
	}
	return a
}
