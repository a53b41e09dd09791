package controlplane

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// Relaying SSH between replicas. An SSH request reaching a replica that
// does not hold the workspace's agent is relayed to the replica that does
// (agent_status.replica_id), at the URL it registered, over the internal
// endpoint relayPath. The front replica has already authenticated the user
// and checked ownership; the relay request is authenticated by an
// HMAC-SHA256, under the shared replica secret, of the workspace ID, the
// ID of the replica it is meant for, a timestamp and a random nonce,
// compared in constant time and valid for relayMaxSkew. The receiving
// replica accepts each nonce once (relayNonces), so a request captured on
// the network between replicas opens no second session, here or on any
// other replica. Without a secret a replica neither relays nor accepts
// relays.

// relayPath is the internal endpoint; {workspace} is the workspace ID.
const relayPath = "/internal/v1/relay/ssh/{workspace}"

// Relay request headers.
const (
	headerRelayTime      = "X-Courier-Relay-Time"
	headerRelayNonce     = "X-Courier-Relay-Nonce"
	headerRelaySignature = "X-Courier-Relay-Signature"
	// headerRelayClient and headerRelayServer carry the SSH client's
	// address and the address it reached (proto.SSHPeer), signed with the
	// rest, so the agent's SSH_CONNECTION is right through a relay too.
	headerRelayClient = "X-Courier-Relay-Client"
	headerRelayServer = "X-Courier-Relay-Server"
)

// relayMaxSkew bounds how old (or how far ahead) a relay request's
// timestamp may be.
const relayMaxSkew = time.Minute

// minReplicaSecret is the shortest replica secret accepted.
const minReplicaSecret = 32

// errRelay is wrapped by relayDialer's failures to reach the replica that
// holds the agent (as opposed to the agent not being connected at all).
var errRelay = errors.New("could not relay to the replica holding the agent")

// loadReplicaSecret reads the shared replica secret, warning when others
// than its owner may read the file. Errors name the file, never its
// content.
func loadReplicaSecret(path string, log *zap.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read replica secret file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the replica secret file is readable by others than its owner; chmod 600 it",
			zap.String("path", path), zap.Stringer("mode", fi.Mode().Perm()))
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < minReplicaSecret {
		return nil, fmt.Errorf("replica secret file %s: the secret must have at least %d bytes", path, minReplicaSecret)
	}
	return b, nil
}

// validAdvertiseURL checks Config.AdvertiseURL: empty, or an http(s) URL
// with a host and nothing but an optional path.
func validAdvertiseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("the advertise URL must be an http:// or https:// base URL such as http://10.0.0.5:8080")
	}
	return nil
}

// relaySignature is the hex HMAC-SHA256 of a relay request for the
// workspace, meant for the replica target, made at unix with nonce.
func relaySignature(secret []byte, workspaceID, target string, unix int64, nonce string, peer proto.SSHPeer) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "courier-ssh-relay/3\x00%s\x00%s\x00%d\x00%s\x00%s\x00%s", workspaceID, target, unix, nonce, peer.Client, peer.Server)
	return hex.EncodeToString(m.Sum(nil))
}

// newRelayNonce returns 16 random bytes in hex.
func newRelayNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// relayNonces remembers the nonces of the relay requests a replica has
// accepted for as long as their timestamps would still be accepted, so
// each signed request is used once.
type relayNonces struct {
	mu        sync.Mutex
	seen      map[string]time.Time // nonce -> when it stops mattering
	lastSweep time.Time
}

// maxRelayNonces bounds the remembered nonces: beyond it, relays are
// refused until old ones expire (a signed request costs the secret, so
// this many in two minutes means something is wrong).
const maxRelayNonces = 1 << 16

// use records nonce, seen at now, and reports whether it is new. A
// request's timestamp is within relayMaxSkew of now, so after
// 2×relayMaxSkew its signature is refused anyway and the nonce is dropped.
func (n *relayNonces) use(nonce string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]time.Time{}
	}
	if now.Sub(n.lastSweep) > time.Second {
		for k, until := range n.seen {
			if now.After(until) {
				delete(n.seen, k)
			}
		}
		n.lastSweep = now
	}
	if _, dup := n.seen[nonce]; dup || len(n.seen) >= maxRelayNonces {
		return false
	}
	n.seen[nonce] = now.Add(2 * relayMaxSkew)
	return true
}

// relayDialer is the SSH dialer of the REST API: the local agent endpoint
// first, else the replica that holds the agent.
type relayDialer struct {
	local  agentDialer
	store  store.Store
	self   string // this replica's ID
	secret []byte // nil: no relaying
	ttl    time.Duration
	now    func() time.Time
	log    *zap.Logger
}

// Dial implements agentDialer.
func (d relayDialer) Dial(ctx context.Context, workspaceID string, sshPeer proto.SSHPeer) (net.Conn, error) {
	conn, err := d.local.Dial(ctx, workspaceID, sshPeer)
	if !errors.Is(err, errAgentNotConnected) {
		return conn, err
	}
	st, serr := d.store.AgentStatus(ctx, workspaceID)
	if serr != nil || !st.Connected || st.ReplicaID == "" || st.ReplicaID == d.self {
		return nil, err
	}
	peer, perr := d.store.Replica(ctx, st.ReplicaID)
	switch {
	case errors.Is(perr, store.ErrNotFound) || (perr == nil && d.now().Sub(peer.HeartbeatAt) > d.ttl):
		return nil, err // its replica is gone: the agent is not connected
	case perr != nil:
		return nil, fmt.Errorf("%w: %w", errRelay, perr)
	case d.secret == nil:
		return nil, fmt.Errorf("%w: this replica has no replica secret (--replica-secret-file)", errRelay)
	case peer.RelayURL == "":
		return nil, fmt.Errorf("%w: that replica registered no address (--advertise-url)", errRelay)
	}
	target := strings.TrimSuffix(peer.RelayURL, "/") + strings.Replace(relayPath, "{workspace}", url.PathEscape(workspaceID), 1)
	target = "ws" + strings.TrimPrefix(target, "http")
	now, nonce := d.now().Unix(), newRelayNonce()
	h := http.Header{}
	h.Set(headerRelayTime, strconv.FormatInt(now, 10))
	h.Set(headerRelayNonce, nonce)
	h.Set(headerRelayClient, sshPeer.Client)
	h.Set(headerRelayServer, sshPeer.Server)
	h.Set(headerRelaySignature, relaySignature(d.secret, workspaceID, st.ReplicaID, now, nonce, sshPeer))
	c, res, derr := websocket.Dial(ctx, target, &websocket.DialOptions{HTTPHeader: h})
	if derr != nil {
		if res != nil && res.StatusCode == http.StatusServiceUnavailable {
			return nil, err // it no longer holds the agent
		}
		return nil, fmt.Errorf("%w: %w", errRelay, derr)
	}
	d.log.Info("relaying ssh to the replica holding the agent", zap.String("workspace_id", workspaceID),
		zap.String("replica_id", st.ReplicaID))
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	c.SetReadLimit(sshReadLimit) // after NetConn, which turns the limit off
	return nc, nil
}

// relayHandler serves relayPath: an authenticated replica's SSH stream to
// an agent this replica holds.
type relayHandler struct {
	local  agentDialer
	self   string // this replica's ID, which a request must be signed for
	secret []byte
	nonces *relayNonces
	now    func() time.Time
	base   context.Context // cancelled at shutdown
	log    *zap.Logger
}

func (h relayHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wsID := r.PathValue("workspace")
	if h.secret == nil {
		writeJSON(w, http.StatusForbidden, ErrorResponse{Message: "this replica accepts no relayed SSH: it has no replica secret (--replica-secret-file)"})
		return
	}
	unix, err := strconv.ParseInt(r.Header.Get(headerRelayTime), 10, 64)
	nonce := r.Header.Get(headerRelayNonce)
	got := []byte(r.Header.Get(headerRelaySignature))
	sshPeer := proto.SSHPeer{Client: r.Header.Get(headerRelayClient), Server: r.Header.Get(headerRelayServer)}
	want := []byte(relaySignature(h.secret, wsID, h.self, unix, nonce, sshPeer))
	now := h.now()
	skew := now.Sub(time.Unix(unix, 0))
	if !hmac.Equal(got, want) || err != nil || len(nonce) != 32 || skew > relayMaxSkew || skew < -relayMaxSkew {
		h.log.Warn("refused a relayed SSH request: bad or stale replica signature", zap.String("remote", r.RemoteAddr))
		writeJSON(w, http.StatusUnauthorized, ErrorResponse{Message: "bad or stale replica signature"})
		return
	}
	// After the signature: only a replica's own requests reach the store.
	if !h.nonces.use(nonce, now) {
		h.log.Warn("refused a relayed SSH request: its nonce was used before (a replay)", zap.String("remote", r.RemoteAddr))
		writeJSON(w, http.StatusUnauthorized, ErrorResponse{Message: "relay request already used"})
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(h.base, cancel)
	defer stop()
	agentConn, err := h.local.Dial(ctx, wsID, sshPeer)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Message: "the agent is not connected to this replica"})
		return
	}
	defer agentConn.Close()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	peerConn := websocket.NetConn(ctx, c, websocket.MessageBinary)
	c.SetReadLimit(sshReadLimit)
	defer peerConn.Close()
	h.log.Info("relayed ssh session started", zap.String("workspace_id", wsID))
	pipe(ctx, peerConn, agentConn)
	h.log.Info("relayed ssh session ended", zap.String("workspace_id", wsID))
}
