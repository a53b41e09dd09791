package agentapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
)

// The manifest an agent asks for first is answered from the rows its
// connect read (the workspace by its token's hash, joined with its owner,
// whom the token is admitted on), so a connect and its manifest read each
// row once, in one read. Every
// later manifest reads both again; and a session admitted without asking
// (its apply reported first) keeps nothing.
func TestFirstManifestReusesTheConnectsReads(t *testing.T) {
	var rc *countingStore
	f := setupCfg(t, func(c *agentapi.Config) {
		rc = &countingStore{Store: c.Store}
		c.Store = rc
	})
	ctx := context.Background()
	s, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws0, owner0 := rc.byID()
	if owner0 != 0 {
		t.Fatalf("the connect read the owner by ID %d times, want 0 (it comes with the token lookup)", owner0)
	}
	m, err := s.Manifest(ctx)
	if err != nil || m.OwnerName != "dev" || m.Env["A"] != "1" || len(m.Scripts) != 1 || m.WorkspaceName != "dev" {
		t.Fatalf("first manifest = %+v, %v", m, err)
	}
	if ws, owner := rc.byID(); ws != ws0 || owner != owner0 {
		t.Fatalf("the first manifest read the workspace %d and the owner %d more times, want 0 and 0", ws-ws0, owner-owner0)
	}

	// The next manifest reads both rows again.
	m, err = s.Manifest(ctx)
	if err != nil || m.OwnerName != "dev" || m.Env["A"] != "1" || len(m.Scripts) != 1 {
		t.Fatalf("second manifest = %+v, %v", m, err)
	}
	if ws, owner := rc.byID(); ws != ws0+1 || owner != owner0+1 {
		t.Fatalf("the second manifest read the workspace %d and the owner %d times, want 1 and 1", ws-ws0, owner-owner0)
	}

	// A session whose first apply report comes before any manifest is
	// admitted, and drops what its connect read.
	s2, err := dial(t, f, agentToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.ReportApply(ctx, proto.ApplyReport{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ws1, _ := rc.byID()
	if m, err := s2.Manifest(ctx); err != nil || m.OwnerName != "dev" || m.Env["A"] != "1" {
		t.Fatalf("manifest after the apply = %+v, %v", m, err)
	}
	if ws, _ := rc.byID(); ws != ws1+1 {
		t.Fatalf("a manifest after the session was admitted read the workspace %d times, want 1", ws-ws1)
	}
}
