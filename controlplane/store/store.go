// Package store defines the control plane's persistence contract (the Store
// interface, its records and its errors) and holds the embedded SQLite
// implementation. The PostgreSQL implementation for several replicas
// (package pgstore) satisfies the same interface and passes the same
// conformance suite (storetest.Run).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/audit"
)

var (
	// ErrNotFound is returned when the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is wrapped by *ConflictError: a uniqueness rule was broken.
	ErrConflict = errors.New("conflict")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store closed")
	// ErrLastAdmin is returned by UpdateUser and DeleteUser when the change
	// would leave no active admin while there was one before.
	ErrLastAdmin = errors.New("the last active admin cannot be suspended, deleted or demoted")
)

// ConflictError says which unique field clashed (for a secret: "name",
// "env_name" or "file_path"; for a user: "username" or "email"; for a
// workspace: "name"; for the first user: "user") and with what.
type ConflictError struct {
	Field   string
	Message string
	// Scoped: an env name or file path clash between secrets of which at
	// least one names its workspaces, so the scopes overlap
	// (inject.ScopesOverlap). The API answers it with a 400 explaining the
	// rule, where a plain clash is a 409.
	Scoped bool
}

// Error returns the message, which names the clashing field.
func (e *ConflictError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// User is a person who owns secrets and workspaces.
type User struct {
	ID       string
	Username string
	Email    string
	// PasswordHash is bcrypt; empty for a user who signs in only with
	// single sign-on (no password matches it).
	PasswordHash []byte
	// Role is RoleAdmin, RoleMember or RoleAuditor. The zero value ""
	// reads as RoleMember.
	Role Role
	// SuspendedAt is when the user was suspended; zero while active.
	SuspendedAt time.Time
	// OIDCIssuer and OIDCSubject link the user to an OpenID Connect
	// identity ("" when none). The pair is unique.
	OIDCIssuer  string
	OIDCSubject string
	CreatedAt   time.Time
}

// IsAdmin reports whether u has the admin role (suspended or not).
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// SeesEveryone reports whether u may list every user and read any user's
// secret metadata and the whole audit log: admins and auditors.
func (u User) SeesEveryone() bool {
	r := RoleOf(u)
	return r == RoleAdmin || r == RoleAuditor
}

// Suspended reports whether u is suspended.
func (u User) Suspended() bool { return !u.SuspendedAt.IsZero() }

// Session is a login. Only the SHA-256 of its token is stored.
type Session struct {
	TokenHash []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Template is what a workspace runs: env, startup scripts and apps.
type Template struct {
	Env     map[string]string `json:"env" yaml:"env"`
	Scripts []proto.Script    `json:"scripts" yaml:"scripts"`
	Apps    []proto.App       `json:"apps" yaml:"apps"`
	// LiveFiles makes the workspace's agent re-apply as soon as the
	// control plane says its owner's secrets changed (files rewritten, env
	// for new processes), instead of at its next start or reconnect.
	LiveFiles bool `json:"live_files,omitempty" yaml:"live_files"`
	// SSH is what the workspace allows over SSH (forwarding); stored in the
	// template's JSON, so older rows read as the defaults.
	SSH proto.SSHSettings `json:"ssh" yaml:"ssh"`
	// Secrets are the secrets the workspace asks its owner for.
	Secrets []proto.SecretRequirement `json:"secrets,omitempty" yaml:"secrets"`
	// OnMissingSecrets is proto.OnMissingWait ("" reads as it) or
	// proto.OnMissingStart.
	OnMissingSecrets string `json:"on_missing_secrets,omitempty" yaml:"on_missing_secrets"`
}

// Workspace belongs to one user. Only the SHA-256 of its agent token is
// stored.
type Workspace struct {
	ID             string
	Name           string
	OwnerID        string
	Template       Template
	AgentTokenHash []byte
	// AgentTokenExpiresAt is when the agent token stops being accepted;
	// zero: never.
	AgentTokenExpiresAt time.Time
	CreatedAt           time.Time
	// State is the last lifecycle state the agent reported ("" if none).
	State   string
	StateAt time.Time
}

// ValueFormat says how a stored value is encoded. The store keeps it beside
// the value and never interprets either: the bytes of a plain value can look
// exactly like a sealed one, so only this record tells them apart.
type ValueFormat int

// Value formats.
const (
	// FormatUnknown: written before formats were recorded (migration 0003).
	// Readers decide by the bytes; see controlplane's openStored.
	FormatUnknown ValueFormat = 0
	// FormatPlain: the value as given.
	FormatPlain ValueFormat = 1
	// FormatSealed: sealed by controlplane/seal.
	FormatSealed ValueFormat = 2
)

// Secret is a secret as stored: Value holds the stored bytes, sealed when
// encryption at rest is on, and Format says which. The store never
// interprets Value.
type Secret struct {
	ID          string
	UserID      string
	Name        string
	Description string
	EnvName     string
	FilePath    string
	Value       []byte
	Format      ValueFormat
	// Enabled is false for a paused secret: it stays listed, keeps its env
	// name and file path reserved and counts toward the caps, but agents
	// do not get its value. The zero value is a paused secret, so set it.
	Enabled bool
	// Workspaces is the secret's scope: the names or globs of the
	// workspaces it goes to (inject.InScope); nil means all of them.
	Workspaces []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// String never includes the stored value (which is the raw value when
// encryption at rest is off).
func (s Secret) String() string {
	return fmt.Sprintf("Secret{name=%q user=%q env=%q file=%q enabled=%t stored_bytes=%d}", s.Name, s.UserID, s.EnvName, s.FilePath, s.Enabled, len(s.Value))
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// String never includes the new value.
func (u SecretUpdate) String() string {
	return fmt.Sprintf("SecretUpdate{value_set=%t}", u.Value != nil)
}

// SecretUpdate is a partial update: a nil field is left as it is.
type SecretUpdate struct {
	Description *string
	EnvName     *string
	FilePath    *string
	Enabled     *bool
	// Workspaces replaces the scope when not nil; a pointer to an empty
	// list means every workspace.
	Workspaces *[]string
	Value      []byte      // nil: unchanged
	Format     ValueFormat // Value's format; used only when Value is set
	UpdatedAt  time.Time
}

// CheckFunc is called inside the write transaction with the user's complete
// secret set as it would be after the change. A non-nil error aborts the
// change and is returned as is. Because it runs inside the transaction,
// concurrent writers cannot together exceed a cap it enforces.
type CheckFunc func(after []Secret) error

// LoginCounter counts failed logins for one key: an account or a client
// address (the control plane chooses the keys and the policy; the store only
// keeps the numbers, so every replica sees the same ones).
type LoginCounter struct {
	Key      string
	Failures int
	// LastAt is when the last attempt was counted.
	LastAt time.Time
	// LockedUntil is when the key may try again; zero when not locked.
	LockedUntil time.Time
}

// LoginCounterFunc gets the current counters of the keys asked for (in that
// order; an absent key has zero Failures and times) and returns the
// counters to store. A counter returned with zero Failures and a zero
// LockedUntil is deleted. A non-nil error stores nothing and is returned as
// is.
type LoginCounterFunc func(cur []LoginCounter) ([]LoginCounter, error)

// Store is the control plane's persistence. Implementations are safe for
// concurrent use. Every method takes a context that bounds it.
type Store interface {
	// CreateFirstUser creates u only if there is no user yet; otherwise it
	// returns a *ConflictError with Field "user". Atomic.
	CreateFirstUser(ctx context.Context, u User) error
	// CreateUser creates u; a taken username or email is a *ConflictError.
	CreateUser(ctx context.Context, u User) error
	// UserByID, UserByUsername and UserByEmail return ErrNotFound when absent.
	// Usernames and emails are matched case-insensitively.
	UserByID(ctx context.Context, id string) (User, error)
	UserByUsername(ctx context.Context, username string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)

	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns ErrNotFound for an unknown or expired session.
	SessionByHash(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	// SessionUser is SessionByHash and UserByID of the session's user in
	// one read (every authenticated request makes it). ErrNotFound for an
	// unknown or expired session.
	SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (Session, User, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error

	// CreateWorkspace creates w; a name already used by the same owner is a
	// *ConflictError with Field "name".
	CreateWorkspace(ctx context.Context, w Workspace) error
	WorkspaceByID(ctx context.Context, id string) (Workspace, error)
	WorkspaceByName(ctx context.Context, ownerID, name string) (Workspace, error)
	// WorkspaceByAgentTokenHash finds the workspace whose agent token
	// hashes to tokenHash, template included, and its owner, in one read:
	// it is every agent connect's lookup, the hottest read of a restart
	// storm; the connect admits the token on the owner it returns, and the
	// manifest the agent asks for next is answered from both rather than
	// read again.
	WorkspaceByAgentTokenHash(ctx context.Context, tokenHash []byte) (Workspace, User, error)
	// ListWorkspaces lists the workspaces of ownerID, or all of them when
	// ownerID is "". Ordered by name.
	ListWorkspaces(ctx context.Context, ownerID string) ([]Workspace, error)
	SetWorkspaceState(ctx context.Context, id, state string, at time.Time) error

	// ListSecrets returns a user's secrets ordered by name.
	ListSecrets(ctx context.Context, userID string) ([]Secret, error)
	GetSecret(ctx context.Context, userID, name string) (Secret, error)
	// CreateSecrets creates all of secs or none. check sees the set after.
	// A name, non-empty env name or non-empty file path already used by
	// another of the user's secrets is a *ConflictError naming the field.
	CreateSecrets(ctx context.Context, userID string, secs []Secret, check CheckFunc) error
	// UpdateSecret applies u to the named secret and returns it as stored.
	UpdateSecret(ctx context.Context, userID, name string, u SecretUpdate, check CheckFunc) (Secret, error)
	DeleteSecret(ctx context.Context, userID, name string) error
	// SecretsRevision returns userID's secrets revision: a counter that
	// CreateSecrets, UpdateSecret and DeleteSecret raise, in their own
	// transaction, whenever they change the user's secrets (SwapSecretValue,
	// which keeps the value, does not). It only grows. A revision read
	// before ListSecrets is never newer than the list. ErrNotFound for an
	// unknown user.
	SecretsRevision(ctx context.Context, userID string) (int64, error)
	// SecretsAtRevision returns userID's secrets, as ListSecrets, and the
	// revision they are at, read in one statement where the user has
	// secrets (an agent's fetch: one read instead of two), else the
	// revision first and then the list. The list is never older than the
	// revision. ErrNotFound for an unknown user.
	SecretsAtRevision(ctx context.Context, userID string) ([]Secret, int64, error)
	// ScanSecrets returns at most limit secrets of every user with an ID
	// greater than afterID, ordered by ID: a batch of a full scan that a
	// concurrent change cannot make skip or repeat a row.
	ScanSecrets(ctx context.Context, afterID string, limit int) ([]Secret, error)
	// SwapSecretValue replaces the value and format of secret id only if its
	// stored value is still old (compare-and-swap), and reports whether it
	// did. It changes nothing else — not UpdatedAt, which R8 orders by. A
	// missing secret is (false, nil).
	SwapSecretValue(ctx context.Context, id string, old, value []byte, format ValueFormat) (bool, error)
	// CountSecretsByFormat counts every user's secrets by value format; a
	// format no secret has is absent.
	CountSecretsByFormat(ctx context.Context) (map[ValueFormat]int, error)

	// UpdateLoginCounters reads the counters of keys, calls fn with them and
	// stores its result, all in one transaction: concurrent updates of the
	// same keys (from this or another replica) are serialized, so no attempt
	// is lost. It returns what fn returned.
	UpdateLoginCounters(ctx context.Context, keys []string, fn LoginCounterFunc) ([]LoginCounter, error)
	// PruneLoginCounters deletes counters whose LastAt and LockedUntil are
	// both before idleBefore, and returns how many it deleted.
	PruneLoginCounters(ctx context.Context, idleBefore time.Time) (int, error)

	// AgentConnected records that connection c of a workspace's agent is up
	// and replaces the connection recorded before. ErrNotFound if the
	// workspace does not exist.
	AgentConnected(ctx context.Context, workspaceID string, c AgentConnection) error
	// AgentDisconnected records the end of connection connID. It does
	// nothing when another connection has been recorded since.
	AgentDisconnected(ctx context.Context, workspaceID, connID string, at time.Time) error
	// AgentReplaced records that a newer connection replaced the agent's
	// connection at at, with a note for operators (no values).
	AgentReplaced(ctx context.Context, workspaceID string, at time.Time, note string) error
	// SetAgentApply stores the agent's last apply report.
	SetAgentApply(ctx context.Context, workspaceID string, rep proto.ApplyReport) error
	// RecordAgentEvents applies evs in order, each as the method its Kind
	// names would, all in one transaction: a replica records its agents'
	// connects, disconnects and apply reports in batches, one commit for
	// every change of a restart storm's moment. An event of a workspace
	// that does not exist changes nothing, and missing lists the indexes
	// of those (never of a Disconnected one, which has nothing to end
	// either way). On an error none of evs was applied.
	RecordAgentEvents(ctx context.Context, evs []AgentEvent) (missing []int, err error)
	// AgentStatus returns what is known of a workspace's agent: a zero
	// AgentStatus (with WorkspaceID set) when its agent never connected,
	// ErrNotFound when the workspace does not exist.
	AgentStatus(ctx context.Context, workspaceID string) (AgentStatus, error)
	// DisconnectStaleAgents marks disconnected, at at, every connected
	// agent held by replicaID, by no replica, by a replica that is not
	// registered or by one whose heartbeat is before staleBefore, and
	// unregisters those stale replicas. It returns how many agents it
	// marked. A replica calls it when it starts (connections do not
	// outlive the process that served them) and with each heartbeat (a
	// killed replica's agents are not left "connected"). Agents of live
	// replicas are untouched.
	DisconnectStaleAgents(ctx context.Context, replicaID string, staleBefore, at time.Time) (int, error)

	// RegisterReplica records r, or refreshes its relay URL and heartbeat,
	// and reports whether r was registered already. false for a replica
	// that registered before means another replica's DisconnectStaleAgents
	// removed it (and marked its agents disconnected) meanwhile.
	RegisterReplica(ctx context.Context, r Replica) (existed bool, err error)
	// Replica returns the registered replica id; ErrNotFound if none.
	Replica(ctx context.Context, id string) (Replica, error)
	// RemoveReplica unregisters replica id (nothing if it is not
	// registered).
	RemoveReplica(ctx context.Context, id string) error
	// ConnectedAgentsByReplica returns, for every registered replica whose
	// heartbeat is not before liveSince, how many agents it holds
	// connected (0 for one holding none): what a replica compares its own
	// load with to rebalance (controlplane/rebalance).
	ConnectedAgentsByReplica(ctx context.Context, liveSince time.Time) (map[string]int, error)

	// UpdateUser reads user id inside a write transaction, calls fn with it
	// and stores what fn left in Role, SuspendedAt, PasswordHash, Email,
	// OIDCIssuer and OIDCSubject (ID, Username and CreatedAt are kept). It
	// returns the user as stored. An error from fn is returned as is and
	// stores nothing; ErrNotFound for an unknown user; ErrLastAdmin when
	// the change would leave no active (unsuspended) admin while there was
	// one before; a taken email or OIDC identity is a *ConflictError.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser deletes the user and everything of theirs: secrets,
	// workspaces (with their agent status), sessions and API tokens, in one
	// transaction. ErrNotFound for an unknown user, ErrLastAdmin when the
	// user is the last active admin.
	DeleteUser(ctx context.Context, id string) error
	// UserByOIDC returns the user linked to the OpenID Connect identity
	// (issuer, subject); ErrNotFound when none is.
	UserByOIDC(ctx context.Context, issuer, subject string) (User, error)
	// DeleteUserSessions deletes every session of userID except the one
	// whose hash is keep (nil: none kept) and returns how many it deleted.
	DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error)

	// CreateAPIToken stores t; a name the user already has is a
	// *ConflictError with Field "name".
	CreateAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash returns the token whose SHA-256 is tokenHash;
	// ErrNotFound for an unknown or expired (ExpiresAt not after now) one.
	APITokenByHash(ctx context.Context, tokenHash []byte, now time.Time) (APIToken, error)
	// ListAPITokens lists userID's tokens (every user's when userID is ""),
	// expired ones included, ordered by user ID then name.
	ListAPITokens(ctx context.Context, userID string) ([]APIToken, error)
	// DeleteAPIToken deletes userID's token called name; ErrNotFound if
	// there is none.
	DeleteAPIToken(ctx context.Context, userID, name string) error
	// TouchAPITokens records the last use of each token in uses, in one
	// transaction; a use older than the one recorded is ignored, and an
	// unknown token ID is skipped. A use's FirstUse record is appended to
	// the audit log in that transaction when, and only when, it is the
	// write that moves the token's last use from never (zero): of two
	// replicas touching a never-used token at once, one records it.
	TouchAPITokens(ctx context.Context, uses []APITokenUse) error

	// DeleteWorkspace deletes the workspace and its agent status;
	// ErrNotFound if it does not exist.
	DeleteWorkspace(ctx context.Context, id string) error
	// RotateAgentToken replaces the workspace's agent token hash and
	// expiry (zero: never) and returns the workspace as stored; the old
	// token stops matching at once. ErrNotFound if it does not exist.
	RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (Workspace, error)

	// OIDC sign-in flows (single-use state across replicas) go here.

	// CreateOIDCFlow records a single sign-on step in progress, keyed by
	// f.KeyHash (the SHA-256 of its handle). A taken key is a
	// *ConflictError. It also deletes the flows expired at f.CreatedAt, so
	// abandoned ones do not pile up.
	CreateOIDCFlow(ctx context.Context, f OIDCFlow) error
	// ConsumeOIDCFlow deletes and returns the flow of kind keyed by
	// keyHash, atomically: of two replicas consuming one flow, one gets it
	// and the other ErrNotFound. ErrNotFound too for an unknown flow, one
	// of another kind, or one expired at now (which it also deletes).
	ConsumeOIDCFlow(ctx context.Context, kind string, keyHash []byte, now time.Time) (OIDCFlow, error)

	// AppendWorkspaceLogs stores lines of a workspace's startup script
	// and app output, oldest first, giving each the next Seq of the
	// workspace (Seq only grows, even across trims), then deletes the
	// workspace's oldest lines past lim, in one transaction. It returns
	// the last Seq handed out. ErrNotFound if the workspace does not
	// exist. See startlogs.go.
	AppendWorkspaceLogs(ctx context.Context, workspaceID string, lines []LogLine, lim LogLimits) (int64, error)
	// WorkspaceLogs returns a workspace's stored lines matching q, oldest
	// first; none (not an error) for a workspace without any.
	WorkspaceLogs(ctx context.Context, workspaceID string, q LogQuery) ([]LogLine, error)
	// SetScriptRun records the last run of one script or app of a
	// workspace (keyed by r.Source), replacing the one before.
	// ErrNotFound if the workspace does not exist.
	SetScriptRun(ctx context.Context, workspaceID string, r ScriptRun) error
	// ScriptRuns returns the recorded runs of a workspace's scripts and
	// apps, ordered by StartedAt then Source.
	ScriptRuns(ctx context.Context, workspaceID string) ([]ScriptRun, error)

	// The audit log (issue 20; package audit). Besides these, every write
	// method appends the records that audit.InTx armed in its ctx, in its
	// own transaction and only when it succeeds, then marks them written.

	// ExpireSessions deletes up to limit sessions whose ExpiresAt is not
	// after now (oldest expiry first; sessions without an expiry stay)
	// and, in the same transaction, appends record(sess) to the audit
	// chain for each one deleted. Replicas sweeping at once delete
	// disjoint sessions, so each expiry is recorded once. It returns how
	// many it deleted.
	ExpireSessions(ctx context.Context, now time.Time, limit int, record func(Session) audit.Record) (int, error)
	// AppendAudit appends recs to the chain in one transaction.
	AppendAudit(ctx context.Context, recs []audit.Record) error
	// ListAudit returns the records f selects (f.Validate is applied):
	// newest first, or oldest first after f.After.
	ListAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error)
	// AuditState returns the chain's head and retention checkpoint.
	AuditState(ctx context.Context) (audit.State, error)
	// PruneAudit deletes the oldest records, at most limit, up to the last
	// one (in seq order) timed before before, and stores the last deleted
	// record's seq and hash as the checkpoint, in one transaction. It
	// returns how many it deleted.
	PruneAudit(ctx context.Context, before time.Time, limit int) (int, error)

	// Ready reports whether the database answers and holds every
	// migration this build knows (a replica's readiness): nil, or an
	// error that Unavailable may classify.
	Ready(ctx context.Context) error

	// Close releases the store; it is safe to call twice.
	Close() error
}

// AgentConnection is one websocket connection of a workspace's agent.
type AgentConnection struct {
	// ID is unique per connection.
	ID string
	// RemoteAddr is the peer's address as the control plane saw it.
	RemoteAddr string
	// AgentVersion is the release the agent reported ("" if none).
	AgentVersion string
	// At is when the connection was accepted.
	At time.Time
	// ReplicaID is the control-plane replica holding the connection.
	ReplicaID string
}

// AgentEventKind says which change an AgentEvent records.
type AgentEventKind uint8

// The kinds of AgentEvent, one per single-change method of Store.
const (
	// AgentEventConnected is AgentConnected(WorkspaceID, Conn).
	AgentEventConnected AgentEventKind = iota + 1
	// AgentEventDisconnected is AgentDisconnected(WorkspaceID, ConnID, At).
	AgentEventDisconnected
	// AgentEventReplaced is AgentReplaced(WorkspaceID, At, Note).
	AgentEventReplaced
	// AgentEventApplied is SetAgentApply(WorkspaceID, Apply).
	AgentEventApplied
)

// AgentEvent is one change of a workspace's agent status, as
// RecordAgentEvents applies it. Only the fields its Kind names are read.
type AgentEvent struct {
	Kind        AgentEventKind
	WorkspaceID string
	// Conn is the connection that started (Connected).
	Conn AgentConnection
	// ConnID is the connection that ended (Disconnected).
	ConnID string
	// At is when the connection ended (Disconnected) or was replaced
	// (Replaced).
	At time.Time
	// Note is the operators' note of a replacement (Replaced).
	Note string
	// Apply is the apply report (Applied).
	Apply proto.ApplyReport
}

// Replica is one control-plane process of a deployment sharing the
// database.
type Replica struct {
	// ID is unique per process start.
	ID string
	// RelayURL is where the other replicas reach this one to relay SSH
	// streams ("" when it accepts none).
	RelayURL string
	// HeartbeatAt is when it last said it was alive.
	HeartbeatAt time.Time
}

// AgentStatus is what the control plane knows of a workspace's agent. The
// lifecycle state lives on Workspace. Nothing here holds a secret value.
type AgentStatus struct {
	WorkspaceID string
	// Connected is true while the connection ConnID is up.
	Connected bool
	ConnID    string
	// ReplicaID is the replica holding the connection while Connected
	// ("" otherwise).
	ReplicaID    string
	RemoteAddr   string
	AgentVersion string
	// ConnectedAt is when the last connection started, DisconnectedAt
	// when the last one ended (zero while none has).
	ConnectedAt, DisconnectedAt time.Time
	// ReplacedAt is when a newer connection last replaced an older one,
	// ReplacedNote the operator-facing explanation.
	ReplacedAt   time.Time
	ReplacedNote string
	// LastApply is the last apply report, nil before the first.
	LastApply *proto.ApplyReport
}
