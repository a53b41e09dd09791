package store

import (
	"fmt"
	"github.com/courierhq/courier/controlplane/audit"
	"time"
)

// Role is what a user may do.
type Role string

// Roles.
const (
	// RoleAdmin manages users and workspaces and sees every secret's
	// metadata (never a value).
	RoleAdmin Role = "admin"
	// RoleMember manages their own secrets.
	RoleMember Role = "member"
	// RoleAuditor reads every user's secret metadata and writes nothing
	// of anyone else's.
	RoleAuditor Role = "auditor"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember || r == RoleAuditor }

// TokenScope is what a personal API token may do.
type TokenScope string

// Token scopes.
const (
	// ScopeRead may only read (GET and HEAD).
	ScopeRead TokenScope = "read"
	// ScopeWrite may do what its user may do.
	ScopeWrite TokenScope = "write"
)

// Valid reports whether s is one of the scopes.
func (s TokenScope) Valid() bool { return s == ScopeRead || s == ScopeWrite }

// APIToken is a personal API token for automation. Only the SHA-256 of
// the token is stored.
type APIToken struct {
	ID        string
	UserID    string
	Name      string
	TokenHash []byte
	Scope     TokenScope
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt and LastUsedAddr record the last use seen (zero and ""
	// before the first); written in coalesced batches.
	LastUsedAt   time.Time
	LastUsedAddr string
}

// String never includes the token hash.
func (t APIToken) String() string {
	return fmt.Sprintf("APIToken{name=%q user=%q scope=%s}", t.Name, t.UserID, t.Scope)
}

// APITokenUse is one use of an API token, for TouchAPITokens.
type APITokenUse struct {
	ID   string
	At   time.Time
	Addr string
	// FirstUse, when set, is the token.first_use audit record of the
	// earliest of the uses this one stands for (its time, source, user
	// agent and request ID). TouchAPITokens appends it, in its own
	// transaction, only if that transaction is the one that moves the
	// token's last use from never to a time: so across replicas a token's
	// first use is recorded exactly once.
	FirstUse *audit.Record
}

// RoleOf returns u's role, RoleMember for the zero value.
func RoleOf(u User) Role {
	if u.Role == "" {
		return RoleMember
	}
	return u.Role
}
