package identity_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/identity"
	"github.com/courierhq/courier/controlplane/identity/oidc"
	"github.com/courierhq/courier/controlplane/store"
)

const issuer = "https://idp.example"

// ssoFixture is SSOAccounts over a real SQLite store with one local
// admin ("root") and one local member ("carol", carol@corp.example).
type ssoFixture struct {
	st      *store.SQLite
	created []string // usernames OnCreate saw
}

func newSSOFixture(t *testing.T) *ssoFixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, u := range []store.User{
		{ID: "u-root", Username: "root", Email: "root@corp.example", Role: store.RoleAdmin, CreatedAt: time.Unix(1, 0)},
		{ID: "u-carol", Username: "carol", Email: "carol@corp.example", Role: store.RoleMember, CreatedAt: time.Unix(1, 0)},
	} {
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	return &ssoFixture{st: st}
}

func (f *ssoFixture) accounts(t *testing.T, domains []string, adminGroup string) *identity.SSOAccounts {
	t.Helper()
	a, err := identity.NewSSOAccounts(identity.SSOAccountsConfig{Store: f.st, AllowedEmailDomains: domains,
		AdminGroup: adminGroup, Log: zap.NewNop(), OnCreate: func(ctx context.Context, u store.User) context.Context {
			f.created = append(f.created, u.Username)
			return ctx
		}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSSOAccountsCreateLinkAndReuse(t *testing.T) {
	ctx := context.Background()
	f := newSSOFixture(t)
	a := f.accounts(t, nil, "")

	// A new identity becomes a member without a password, linked to it.
	dave := oidc.Identity{Issuer: issuer, Subject: "sub-dave", Email: "dave@corp.example", PreferredUsername: "carol"}
	u, err := a.User(ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "carol-2" || u.Role != store.RoleMember || u.OIDCSubject != "sub-dave" || len(u.PasswordHash) != 0 {
		t.Fatalf("new user %+v (the taken name carol must become carol-2)", u)
	}
	// OnCreate sees each attempt (the one refused for its name rolls
	// back with its audit record).
	if strings.Join(f.created, ",") != "carol,carol-2" {
		t.Fatalf("OnCreate saw %q", f.created)
	}
	// Signing in again finds the same user, creating nobody.
	again, err := a.User(ctx, dave)
	if err != nil || again.ID != u.ID || len(f.created) != 2 {
		t.Fatalf("second sign-in: %+v %v (created %q)", again, err, f.created)
	}
	if us, err := f.st.ListUsers(ctx); err != nil || len(us) != 3 {
		t.Fatalf("users after two sign-ins: %d, %v", len(us), err)
	}

	// A local user with the same verified e-mail is linked, not copied.
	carol := oidc.Identity{Issuer: issuer, Subject: "sub-carol", Email: "carol@corp.example"}
	linked, err := a.User(ctx, carol)
	if err != nil || linked.ID != "u-carol" || linked.OIDCSubject != "sub-carol" || linked.OIDCIssuer != issuer {
		t.Fatalf("link by e-mail: %+v %v", linked, err)
	}
	// Another identity with that e-mail is refused.
	_, err = a.User(ctx, oidc.Identity{Issuer: issuer, Subject: "sub-impostor", Email: "carol@corp.example"})
	var sr *identity.SSORefusal
	if !errors.Is(err, identity.ErrSSOLinkedElsewhere) || !errors.As(err, &sr) || !strings.Contains(sr.Message, "carol@corp.example") {
		t.Fatalf("second identity for one e-mail: %v", err)
	}
}

func TestSSOAccountsRefusals(t *testing.T) {
	ctx := context.Background()
	f := newSSOFixture(t)
	a := f.accounts(t, []string{"corp.example"}, "")

	_, err := a.User(ctx, oidc.Identity{Issuer: issuer, Subject: "s1", Email: "eve@elsewhere.example"})
	var sr *identity.SSORefusal
	if !errors.Is(err, identity.ErrSSODomain) || !errors.As(err, &sr) || !strings.Contains(sr.Message, "elsewhere.example") {
		t.Fatalf("disallowed domain: %v", err)
	}
	if _, err := f.st.UserByEmail(ctx, "eve@elsewhere.example"); !errors.Is(err, store.ErrNotFound) || len(f.created) != 0 {
		t.Fatalf("a refused identity left a user: %v, created %q", err, f.created)
	}

	if _, err := f.st.UpdateUser(ctx, "u-carol", func(u *store.User) error { u.SuspendedAt = time.Unix(2, 0); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.User(ctx, oidc.Identity{Issuer: issuer, Subject: "s2", Email: "carol@corp.example"}); !errors.Is(err, identity.ErrSSOSuspended) {
		t.Fatalf("suspended account: %v", err)
	}
}

func TestSSOAccountsAdminGroup(t *testing.T) {
	ctx := context.Background()
	f := newSSOFixture(t)
	a := f.accounts(t, nil, "courier-admins")

	admins := []string{"staff", "courier-admins"}
	frank := oidc.Identity{Issuer: issuer, Subject: "sub-frank", Email: "frank@corp.example", Groups: admins}
	u, err := a.User(ctx, frank)
	if err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("member of the admin group: %+v %v", u, err)
	}
	// Out of the group: a member again at the next sign-in.
	frank.Groups = []string{"staff"}
	if u, err = a.User(ctx, frank); err != nil || u.Role != store.RoleMember {
		t.Fatalf("left the admin group: %+v %v", u, err)
	}
	// The last admin stays one, even out of the group.
	root := oidc.Identity{Issuer: issuer, Subject: "sub-root", Email: "root@corp.example"}
	if u, err = a.User(ctx, root); err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("the last admin: %+v %v", u, err)
	}
}
