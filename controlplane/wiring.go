package controlplane

import (
	"context"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
)

// This file is the one place that names the sibling packages seal, agentapi
// and the SQLite store.

// errAgentNotConnected is what agentServer.Dial returns when the workspace's
// agent has no session.
var errAgentNotConnected = agentapi.ErrAgentNotConnected

func plainSealer() Sealer { return seal.Plain{} }

func loadSealer(path string) (Sealer, error) { return seal.LoadKeyFile(path) }

// sealAD is the additional data a value is sealed with: its owner and name.
func sealAD(userID, name string) []byte { return seal.AD(userID, name) }

// looksSealed reports whether stored could be a sealed value.
func looksSealed(stored []byte) bool { return seal.LooksSealed(stored) }

func openStore(ctx context.Context, path string, log *zap.Logger) (store.Store, error) {
	return store.OpenSQLite(ctx, path, log)
}

func newAgentServer(st store.Store, open func(store.Secret) (string, error), log *zap.Logger,
	fileDeliveryDisabled bool, onApply func(string, proto.ApplyReport)) (agentServer, error) {
	cfg := agentapi.DefaultConfig()
	cfg.Store = st
	cfg.Open = open
	cfg.Logger = log
	cfg.FileDeliveryDisabled = fileDeliveryDisabled
	cfg.OnApply = onApply
	return agentapi.New(cfg)
}
