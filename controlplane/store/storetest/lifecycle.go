package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// lifecycleTests are the conformance tests of roles, suspension, deletion,
// API tokens and agent-token rotation (issue 19).
var lifecycleTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"UpdateUser", testUpdateUser},
	{"LastAdmin", testLastAdmin},
	{"LastAdminConcurrent", testLastAdminConcurrent},
	{"DeleteUserCascades", testDeleteUserCascades},
	{"UserByOIDC", testUserByOIDC},
	{"DeleteUserSessions", testDeleteUserSessions},
	{"APITokens", testAPITokens},
	{"TouchAPITokens", testTouchAPITokens},
	{"DeleteWorkspace", testDeleteWorkspace},
	{"RotateAgentToken", testRotateAgentToken},
	{"Ready", testReady},
}

// testReady: a migrated store is ready; a closed one is not.
func testReady(t *testing.T, s store.Store) {
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready on a migrated store: %v", err)
	}
	if store.Unavailable(errors.New("x")) != nil {
		t.Fatal("Unavailable classified an unrelated error")
	}
	_ = s.Close()
	if err := s.Ready(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ready after Close: %v", err)
	}
}

func mkAdmin(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u := store.User{ID: uuid.NewString(), Username: name, Email: name + "@example.com",
		PasswordHash: []byte("hash"), Role: store.RoleAdmin, CreatedAt: T0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func mkWorkspaceHash(t *testing.T, s store.Store, owner store.User, name string, hash []byte) store.Workspace {
	t.Helper()
	w := store.Workspace{ID: uuid.NewString(), Name: name, OwnerID: owner.ID, AgentTokenHash: hash, CreatedAt: T0}
	if err := s.CreateWorkspace(ctx, w); err != nil {
		t.Fatalf("CreateWorkspace: %v", err)
	}
	return w
}

func testUpdateUser(t *testing.T, s store.Store) {
	u := mkUser(t, s, "erin")
	if got, _ := s.UserByID(ctx, u.ID); got.Role != store.RoleMember || got.Suspended() {
		t.Fatalf("new user: role %q suspended %v, want member, active", got.Role, got.Suspended())
	}
	at := T0.Add(time.Hour)
	got, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error {
		x.Role, x.SuspendedAt, x.PasswordHash = store.RoleAuditor, at, []byte("new-hash")
		x.Username, x.ID = "renamed", "other-id" // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []store.User{got, read} {
		if x.ID != u.ID || x.Username != "erin" || x.Role != store.RoleAuditor || !x.SuspendedAt.Equal(at) ||
			string(x.PasswordHash) != "new-hash" || !x.CreatedAt.Equal(T0) {
			t.Fatalf("after update: %+v", x)
		}
	}
	// An error from fn stores nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.Role = store.RoleAdmin; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if read, _ := s.UserByID(ctx, u.ID); read.Role != store.RoleAuditor {
		t.Fatalf("fn error stored the role: %q", read.Role)
	}
	// Unsuspend, invalid role, unknown user, taken email.
	if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.SuspendedAt = time.Time{}; return nil }); err != nil {
		t.Fatal(err)
	}
	if read, _ := s.UserByID(ctx, u.ID); read.Suspended() {
		t.Fatal("still suspended")
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.Role = "root"; return nil }); err == nil {
		t.Fatal("invalid role stored")
	}
	if _, err := s.UpdateUser(ctx, uuid.NewString(), func(*store.User) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	mkUser(t, s, "frank")
	_, err = s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.Email = "FRANK@example.com"; return nil })
	wantConflict(t, err, "email")
}

func testLastAdmin(t *testing.T, s store.Store) {
	a := mkAdmin(t, s, "root")
	member := mkUser(t, s, "member")
	for name, fn := range map[string]func(*store.User) error{
		"demote":  func(x *store.User) error { x.Role = store.RoleMember; return nil },
		"suspend": func(x *store.User) error { x.SuspendedAt = T0; return nil },
	} {
		if _, err := s.UpdateUser(ctx, a.ID, fn); !errors.Is(err, store.ErrLastAdmin) {
			t.Fatalf("%s the last admin: %v", name, err)
		}
	}
	if err := s.DeleteUser(ctx, a.ID); !errors.Is(err, store.ErrLastAdmin) {
		t.Fatalf("delete the last admin: %v", err)
	}
	// A suspended admin does not count: promote the member, suspend root,
	// then the member is the last active admin.
	if _, err := s.UpdateUser(ctx, member.ID, func(x *store.User) error { x.Role = store.RoleAdmin; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, a.ID, func(x *store.User) error { x.SuspendedAt = T0; return nil }); err != nil {
		t.Fatalf("suspend one of two admins: %v", err)
	}
	if _, err := s.UpdateUser(ctx, member.ID, func(x *store.User) error { x.Role = store.RoleAuditor; return nil }); !errors.Is(err, store.ErrLastAdmin) {
		t.Fatalf("demote the last active admin: %v", err)
	}
	// Changing something else of the last admin is fine.
	if _, err := s.UpdateUser(ctx, member.ID, func(x *store.User) error { x.PasswordHash = []byte("h2"); return nil }); err != nil {
		t.Fatalf("password of the last admin: %v", err)
	}
	// The suspended admin may be deleted: it is not active.
	if err := s.DeleteUser(ctx, a.ID); err != nil {
		t.Fatalf("delete a suspended admin: %v", err)
	}
}

// testLastAdminConcurrent demotes two admins at once, many times: exactly
// one demotion of each pair may succeed.
func testLastAdminConcurrent(t *testing.T, s store.Store) {
	for i := range 5 {
		a := mkAdmin(t, s, "a"+uuid.NewString()[:8])
		b := mkAdmin(t, s, "b"+uuid.NewString()[:8])
		if i > 0 {
			// Only a and b are active admins in each round.
			us, _ := s.ListUsers(ctx)
			for _, u := range us {
				if u.ID != a.ID && u.ID != b.ID && u.IsAdmin() && !u.Suspended() {
					if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error { x.SuspendedAt = T0; return nil }); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, id := range []string{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = s.UpdateUser(ctx, id, func(x *store.User) error { x.Role = store.RoleMember; return nil })
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrLastAdmin):
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent demotions succeeded, want 1 (%v)", i, ok, errs)
		}
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	mkAdmin(t, s, "root")
	u := mkUser(t, s, "gone")
	keep := mkUser(t, s, "kept")
	if err := s.CreateSecrets(ctx, u.ID, []store.Secret{mkSecret("a", "A", "~/a")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSecrets(ctx, keep.ID, []store.Secret{mkSecret("a", "A", "~/a")}, nil); err != nil {
		t.Fatal(err)
	}
	w := mkWorkspaceHash(t, s, u, "dev", []byte("gone-agent-hash"))
	if err := s.AgentConnected(ctx, w.ID, store.AgentConnection{ID: "c1", At: T0}); err != nil {
		t.Fatal(err)
	}
	sh := []byte("gone-session-hash-0123456789abcd")
	if err := s.CreateSession(ctx, store.Session{TokenHash: sh, UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	th := []byte("gone-api-token-hash-0123456789ab")
	if err := s.CreateAPIToken(ctx, store.APIToken{ID: uuid.NewString(), UserID: u.ID, Name: "ci", TokenHash: th,
		Scope: store.ScopeWrite, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user: %v", err)
	}
	if secs, err := s.ListSecrets(ctx, u.ID); err != nil || len(secs) != 0 {
		t.Fatalf("secrets left: %d, %v", len(secs), err)
	}
	if _, err := s.WorkspaceByID(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("workspace: %v", err)
	}
	if _, _, err := s.WorkspaceByAgentTokenHash(ctx, w.AgentTokenHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent token: %v", err)
	}
	if _, err := s.AgentStatus(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent status: %v", err)
	}
	if _, err := s.SessionByHash(ctx, sh, T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, th, T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("API token: %v", err)
	}
	if secs, err := s.ListSecrets(ctx, keep.ID); err != nil || len(secs) != 1 {
		t.Fatalf("another user's secrets: %d, %v", len(secs), err)
	}
	if err := s.DeleteUser(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testUserByOIDC(t *testing.T, s store.Store) {
	u := mkUser(t, s, "oidc")
	if _, err := s.UserByOIDC(ctx, "https://idp.example", "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unlinked: %v", err)
	}
	if _, err := s.UserByOIDC(ctx, "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty subject must match no one: %v", err)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x *store.User) error {
		x.OIDCIssuer, x.OIDCSubject = "https://idp.example", "sub-1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByOIDC(ctx, "https://idp.example", "sub-1")
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByOIDC = %+v, %v", got, err)
	}
	if _, err := s.UserByOIDC(ctx, "https://other.example", "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another issuer: %v", err)
	}
	other := mkUser(t, s, "other")
	_, err = s.UpdateUser(ctx, other.ID, func(x *store.User) error {
		x.OIDCIssuer, x.OIDCSubject = "https://idp.example", "sub-1"
		return nil
	})
	wantConflict(t, err, "oidc_subject")
	// A user created already linked.
	v := store.User{ID: uuid.NewString(), Username: "sso", Email: "sso@example.com", Role: store.RoleMember,
		OIDCIssuer: "https://idp.example", OIDCSubject: "sub-2", CreatedAt: T0}
	if err := s.CreateUser(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserByOIDC(ctx, "https://idp.example", "sub-2"); err != nil || got.ID != v.ID || len(got.PasswordHash) != 0 {
		t.Fatalf("created linked: %+v, %v", got, err)
	}
}

func testDeleteUserSessions(t *testing.T, s store.Store) {
	u, other := mkUser(t, s, "sess"), mkUser(t, s, "sess2")
	hashes := [][]byte{[]byte("s-1-0123456789abcdef0123456789ab"), []byte("s-2-0123456789abcdef0123456789ab"), []byte("s-3-0123456789abcdef0123456789ab")}
	for _, h := range hashes {
		if err := s.CreateSession(ctx, store.Session{TokenHash: h, UserID: u.ID, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	oh := []byte("s-o-0123456789abcdef0123456789ab")
	if err := s.CreateSession(ctx, store.Session{TokenHash: oh, UserID: other.ID, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteUserSessions(ctx, u.ID, hashes[1])
	if err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions keep = %d, %v; want 2", n, err)
	}
	if _, err := s.SessionByHash(ctx, hashes[1], T0); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	if _, err := s.SessionByHash(ctx, hashes[0], T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if n, err := s.DeleteUserSessions(ctx, u.ID, nil); err != nil || n != 1 {
		t.Fatalf("DeleteUserSessions all = %d, %v; want 1", n, err)
	}
	if _, err := s.SessionByHash(ctx, oh, T0); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
}

func testAPITokens(t *testing.T, s store.Store) {
	u, v := mkUser(t, s, "tok"), mkUser(t, s, "tok2")
	mk := func(user store.User, name string, scope store.TokenScope, exp time.Time) store.APIToken {
		return store.APIToken{ID: uuid.NewString(), UserID: user.ID, Name: name, TokenHash: []byte("hash-" + user.ID + name),
			Scope: scope, CreatedAt: T0, ExpiresAt: exp}
	}
	ci, ro := mk(u, "ci", store.ScopeWrite, T0.Add(time.Hour)), mk(u, "b-read", store.ScopeRead, T0.Add(2*time.Hour))
	for _, tok := range []store.APIToken{ci, ro, mk(v, "ci", store.ScopeWrite, T0.Add(time.Hour))} {
		if err := s.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	dup := mk(u, "ci", store.ScopeRead, T0.Add(time.Hour))
	dup.TokenHash = []byte("another-hash")
	wantConflict(t, s.CreateAPIToken(ctx, dup), "name")
	got, err := s.APITokenByHash(ctx, ro.TokenHash, T0.Add(time.Minute))
	if err != nil || got.ID != ro.ID || got.Name != "b-read" || got.Scope != store.ScopeRead ||
		!got.CreatedAt.Equal(T0) || !got.ExpiresAt.Equal(ro.ExpiresAt) || !got.LastUsedAt.IsZero() {
		t.Fatalf("APITokenByHash = %+v, %v", got, err)
	}
	if _, err := s.APITokenByHash(ctx, ci.TokenHash, ci.ExpiresAt); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	list, err := s.ListAPITokens(ctx, u.ID)
	if err != nil || len(list) != 2 || list[0].Name != "b-read" || list[1].Name != "ci" {
		t.Fatalf("ListAPITokens(u) = %v, %v", list, err)
	}
	all, err := s.ListAPITokens(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAPITokens(all) = %v, %v", all, err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].UserID > all[i].UserID || (all[i-1].UserID == all[i].UserID && all[i-1].Name > all[i].Name) {
			t.Fatalf("ListAPITokens(all) not ordered by user, name: %v", all)
		}
	}
	if err := s.DeleteAPIToken(ctx, u.ID, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAPIToken(ctx, u.ID, "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, ci.TokenHash, T0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token: %v", err)
	}
	if list, _ := s.ListAPITokens(ctx, v.ID); len(list) != 1 {
		t.Fatalf("another user's token with the same name was deleted: %v", list)
	}
}

func testTouchAPITokens(t *testing.T, s store.Store) {
	u := mkUser(t, s, "touch")
	tok := store.APIToken{ID: uuid.NewString(), UserID: u.ID, Name: "ci", TokenHash: []byte("touch-hash"),
		Scope: store.ScopeWrite, CreatedAt: T0, ExpiresAt: T0.Add(24 * time.Hour)}
	if err := s.CreateAPIToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAPITokens(ctx, nil); err != nil {
		t.Fatal(err)
	}
	uses := []store.APITokenUse{
		{ID: tok.ID, At: T0.Add(2 * time.Minute), Addr: "192.0.2.7"},
		{ID: tok.ID, At: T0.Add(time.Minute), Addr: "192.0.2.1"}, // older: ignored
		{ID: uuid.NewString(), At: T0.Add(time.Minute), Addr: "192.0.2.9"},
	}
	if err := s.TouchAPITokens(ctx, uses); err != nil {
		t.Fatal(err)
	}
	got, err := s.APITokenByHash(ctx, tok.TokenHash, T0)
	if err != nil || !got.LastUsedAt.Equal(T0.Add(2*time.Minute)) || got.LastUsedAddr != "192.0.2.7" {
		t.Fatalf("after touch: %+v, %v", got, err)
	}
}

func testDeleteWorkspace(t *testing.T, s store.Store) {
	u := mkUser(t, s, "wsdel")
	w := mkWorkspaceHash(t, s, u, "dev", []byte("wsdel-hash"))
	w2 := mkWorkspaceHash(t, s, u, "other", []byte("wsdel-hash-2"))
	if err := s.SetAgentApply(ctx, w.ID, proto.ApplyReport{}); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.AgentConnected(ctx, w.ID, store.AgentConnection{ID: "c", At: T0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkspace(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WorkspaceByID(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted workspace: %v", err)
	}
	if _, err := s.AgentStatus(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent status of a deleted workspace: %v", err)
	}
	if err := s.DeleteWorkspace(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := s.WorkspaceByID(ctx, w2.ID); err != nil {
		t.Fatalf("the other workspace: %v", err)
	}
	// The name is free again.
	mkWorkspaceHash(t, s, u, "dev", []byte("wsdel-hash-3"))
}

func testRotateAgentToken(t *testing.T, s store.Store) {
	u := mkUser(t, s, "rot")
	w := mkWorkspaceHash(t, s, u, "dev", []byte("rot-old-hash"))
	if got, _ := s.WorkspaceByID(ctx, w.ID); !got.AgentTokenExpiresAt.IsZero() {
		t.Fatalf("new workspace's token expires: %v", got.AgentTokenExpiresAt)
	}
	exp := T0.Add(30 * 24 * time.Hour)
	got, err := s.RotateAgentToken(ctx, w.ID, []byte("rot-new-hash"), exp)
	if err != nil || string(got.AgentTokenHash) != "rot-new-hash" || !got.AgentTokenExpiresAt.Equal(exp) || got.Name != "dev" {
		t.Fatalf("RotateAgentToken = %+v, %v", got, err)
	}
	if _, _, err := s.WorkspaceByAgentTokenHash(ctx, []byte("rot-old-hash")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old token: %v", err)
	}
	read, owner, err := s.WorkspaceByAgentTokenHash(ctx, []byte("rot-new-hash"))
	if err != nil || read.ID != w.ID || !read.AgentTokenExpiresAt.Equal(exp) || owner.ID != w.OwnerID {
		t.Fatalf("new token: %+v, owner %+v, %v", read, owner, err)
	}
	if _, err := s.RotateAgentToken(ctx, uuid.NewString(), []byte("x"), time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
	// A workspace created with an expiry keeps it.
	w2 := store.Workspace{ID: uuid.NewString(), Name: "exp", OwnerID: u.ID, AgentTokenHash: []byte("rot-exp"), AgentTokenExpiresAt: exp, CreatedAt: T0}
	if err := s.CreateWorkspace(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WorkspaceByID(ctx, w2.ID); !got.AgentTokenExpiresAt.Equal(exp) {
		t.Fatalf("created expiry: %v", got.AgentTokenExpiresAt)
	}
}
