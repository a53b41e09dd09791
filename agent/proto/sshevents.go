package proto

import "time"

// SSH events (issue 20): the control plane only relays an SSH connection's
// encrypted bytes, so the agent, which terminates SSH, tells it which port
// forwards were opened and when sftp started, for the audit log. Never the
// forwarded data. Negotiated: the control plane announces FeatureSSHEvents
// in HeaderControlFeatures, and only then does the agent send PathSSHEvents
// (an older control plane would answer 404).

// FeatureSSHEvents is the control-plane feature word for PathSSHEvents.
const FeatureSSHEvents = "ssh-events"

// PathSSHEvents is the route of SSH event batches: POST SSHEventReport →
// 204.
const PathSSHEvents = "/v1/ssh-events"

// Kinds of SSHEvent.
const (
	// SSHForwardLocal: ssh -L to a host:port (a direct-tcpip channel).
	SSHForwardLocal = "forward_local"
	// SSHForwardRemote: ssh -R, a listener bound in the workspace.
	SSHForwardRemote = "forward_remote"
	// SSHForwardUnixLocal: ssh -L to a Unix socket in the workspace.
	SSHForwardUnixLocal = "forward_unix_local"
	// SSHForwardUnixRemote: ssh -R on a Unix socket in the workspace.
	SSHForwardUnixRemote = "forward_unix_remote"
	// SSHAgentForward: ssh -A, the client's agent offered in a session.
	SSHAgentForward = "agent_forward"
	// SSHSFTP: the sftp subsystem started (sftp, scp).
	SSHSFTP = "sftp"
)

// SSHEventKinds lists every SSHEvent kind, for validation.
var SSHEventKinds = []string{SSHForwardLocal, SSHForwardRemote, SSHForwardUnixLocal, SSHForwardUnixRemote,
	SSHAgentForward, SSHSFTP}

// SSHEvent is one forward opened or sftp session started in an SSH
// connection into the workspace. Only what was allowed and opened is
// reported; refusals stay in the agent's log and metrics.
type SSHEvent struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Target is the forward's host:port or socket path ("" for sftp and
	// agent forwarding): where, never what.
	Target string `json:"target,omitempty"`
	// Client is the SSH client's address as the control plane saw it
	// (SSHPeer.Client), or the connection's own remote address.
	Client string `json:"client,omitempty"`
	// User is the SSH user name the client logged in with.
	User string `json:"user,omitempty"`
}

// SSHEventReport is the body of POST PathSSHEvents.
type SSHEventReport struct {
	Events []SSHEvent `json:"events"`
}

// Bounds of an SSHEventReport, enforced by the control plane (413 past
// MaxReportSSHEvents; longer strings are clipped).
const (
	MaxReportSSHEvents = 256
	MaxSSHEventTarget  = 512
	MaxSSHEventClient  = 128
	MaxSSHEventUser    = 128
)
