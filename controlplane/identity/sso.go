package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/store"
)

// Why SSOAccounts refuses an identity; an *SSORefusal matches one of them
// (errors.Is) and says it in words.
var (
	// ErrSSODomain refuses an e-mail domain not in the allowed list.
	ErrSSODomain = errors.New("identity: e-mail domain may not sign in")
	// ErrSSOLinkedElsewhere refuses an e-mail whose account is linked to
	// another identity.
	ErrSSOLinkedElsewhere = errors.New("identity: account linked to another identity")
	// ErrSSOSuspended refuses the identity of a suspended account.
	ErrSSOSuspended = errors.New("identity: account suspended")
)

// SSORefusal is an identity SSOAccounts refuses: Reason is one of the
// ErrSSO errors, Message what the person is told (an e-mail domain or
// address they signed in with, never a token).
type SSORefusal struct {
	Reason  error
	Message string
}

func (e *SSORefusal) Error() string { return e.Message }

// Unwrap returns the reason.
func (e *SSORefusal) Unwrap() error { return e.Reason }

// SSOStore is what SSOAccounts reads and writes.
type SSOStore interface {
	UserByOIDC(ctx context.Context, issuer, subject string) (store.User, error)
	UserByEmail(ctx context.Context, email string) (store.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error)
	CreateUser(ctx context.Context, u store.User) error
}

// SSOAccountsConfig says how verified single sign-on identities become
// Courier users. Store and Log are required.
type SSOAccountsConfig struct {
	Store SSOStore
	// AllowedEmailDomains, when not empty, are the only e-mail domains
	// that may sign in.
	AllowedEmailDomains []string
	// AdminGroup, when set, is the provider's group whose members are
	// admins; an admin outside it becomes a member at their next sign-in.
	AdminGroup string
	Log        *zap.Logger
	// Now stamps new users. Default time.Now.
	Now func() time.Time
	// OnCreate returns the context a new user is created under (the
	// control plane's audit record of the creation travels in it).
	// Default: the context as it is.
	OnCreate func(ctx context.Context, u store.User) context.Context
}

// SSOAccounts turns verified identities into Courier users.
type SSOAccounts struct{ cfg SSOAccountsConfig }

// NewSSOAccounts returns the accounts of cfg.
func NewSSOAccounts(cfg SSOAccountsConfig) (*SSOAccounts, error) {
	if cfg.Store == nil || cfg.Log == nil {
		return nil, errors.New("identity: SSOAccountsConfig needs Store and Log")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnCreate == nil {
		cfg.OnCreate = func(ctx context.Context, _ store.User) context.Context { return ctx }
	}
	return &SSOAccounts{cfg: cfg}, nil
}

// User returns the Courier user of a verified identity: the one linked to
// (issuer, subject), else the local user with the same (verified) e-mail,
// now linked, else a new user without a password (a member, or an admin
// when in the admin group). It refuses an e-mail domain that is not
// allowed, an e-mail whose account is linked to another identity, and a
// suspended user, and applies the admin group.
func (a *SSOAccounts) User(ctx context.Context, id oidc.Identity) (store.User, error) {
	if !oidc.EmailDomainAllowed(id.Email, a.cfg.AllowedEmailDomains) {
		return store.User{}, &SSORefusal{ErrSSODomain, fmt.Sprintf("e-mail addresses of %s may not sign in to this server", emailDomain(id.Email))}
	}
	u, err := a.cfg.Store.UserByOIDC(ctx, id.Issuer, id.Subject)
	if errors.Is(err, store.ErrNotFound) {
		u, err = a.linkOrCreate(ctx, id)
	}
	if err != nil {
		return store.User{}, err
	}
	if u.Suspended() {
		return store.User{}, &SSORefusal{ErrSSOSuspended, "this account is suspended; ask an admin to activate it"}
	}
	return a.applyAdminGroup(ctx, u, id)
}

// emailDomain is the domain of email, cut for a message.
func emailDomain(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		d := email[i+1:]
		if len(d) > 128 {
			d = d[:128] + "..."
		}
		return d
	}
	return "(none)"
}

func (a *SSOAccounts) linkOrCreate(ctx context.Context, id oidc.Identity) (store.User, error) {
	st, log := a.cfg.Store, a.cfg.Log
	u, err := st.UserByEmail(ctx, id.Email)
	switch {
	case err == nil && u.OIDCSubject != "":
		return store.User{}, &SSORefusal{ErrSSOLinkedElsewhere,
			fmt.Sprintf("the account with the e-mail %s is linked to another single sign-on identity; ask an admin", id.Email)}
	case err == nil:
		linked, err := st.UpdateUser(ctx, u.ID, func(x *store.User) error {
			x.OIDCIssuer, x.OIDCSubject = id.Issuer, id.Subject
			return nil
		})
		if err != nil {
			return store.User{}, fmt.Errorf("link user: %w", err)
		}
		log.Info("linked a user to single sign-on by verified e-mail", zap.String("user_id", u.ID), zap.String("username", u.Username))
		return linked, nil
	case !errors.Is(err, store.ErrNotFound):
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	role := store.RoleMember
	if a.inAdminGroup(id) {
		role = store.RoleAdmin
	}
	base := oidc.BaseUsername(id)
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if i > 20 { // a crowded name: a random suffix
			suffix, _ := oidc.RandomString(4)
			name = base + "-" + strings.NewReplacer("_", "x", "-", "x").Replace(suffix)
		}
		nu := store.User{ID: uuid.NewString(), Username: name, Email: id.Email, Role: role,
			OIDCIssuer: id.Issuer, OIDCSubject: id.Subject, CreatedAt: a.cfg.Now()}
		err := st.CreateUser(a.cfg.OnCreate(ctx, nu), nu)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Field == "username" && i < 25 {
			continue
		}
		if err != nil {
			return store.User{}, fmt.Errorf("create user: %w", err)
		}
		log.Info("created a user at first single sign-on", zap.String("user_id", nu.ID), zap.String("username", nu.Username),
			zap.String("role", string(role)))
		return nu, nil
	}
}

func (a *SSOAccounts) inAdminGroup(id oidc.Identity) bool {
	g := a.cfg.AdminGroup
	return g != "" && slices.Contains(id.Groups, g)
}

// applyAdminGroup makes u an admin when in the admin group and an admin
// not in it a member; the last admin stays admin (and that is logged).
func (a *SSOAccounts) applyAdminGroup(ctx context.Context, u store.User, id oidc.Identity) (store.User, error) {
	if a.cfg.AdminGroup == "" {
		return u, nil
	}
	want := store.RoleOf(u)
	switch {
	case a.inAdminGroup(id):
		want = store.RoleAdmin
	case u.IsAdmin():
		want = store.RoleMember
	}
	if want == store.RoleOf(u) {
		return u, nil
	}
	nu, err := a.cfg.Store.UpdateUser(ctx, u.ID, func(x *store.User) error { x.Role = want; return nil })
	if errors.Is(err, store.ErrLastAdmin) {
		a.cfg.Log.Warn("the last admin is not in the OIDC admin group; kept as admin", zap.String("user_id", u.ID))
		return u, nil
	}
	if err != nil {
		return store.User{}, fmt.Errorf("apply the admin group: %w", err)
	}
	a.cfg.Log.Info("role set from the OIDC admin group", zap.String("user_id", u.ID), zap.String("role", string(want)))
	return nu, nil
}
