package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/notify/pgnotify"
	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/controlplane/store/pgstore"
)

// This file is the one place that names the sibling packages seal, agentapi,
// notify (local and PostgreSQL) and the two stores (SQLite, PostgreSQL).

// errAgentNotConnected is what agentServer.Dial returns when the workspace's
// agent has no session.
var errAgentNotConnected = agentapi.ErrAgentNotConnected

func plainSealer() Sealer { return seal.Plain{} }

func loadSealer(path string) (Sealer, error) { return seal.LoadKeyFile(path) }

// sealAD is the additional data a value is sealed with: its owner and name.
func sealAD(userID, name string) []byte { return seal.AD(userID, name) }

// looksSealed reports whether stored could be a sealed value.
func looksSealed(stored []byte) bool { return seal.LooksSealed(stored) }

// OpenStore opens the store cfg names: PostgreSQL at cfg.PostgresURL when
// set, else the SQLite database in cfg.DataDir (creating the directory).
// Only those two fields of cfg are used. The server's maintenance commands
// (reseal, unseal) open the store with it too.
func OpenStore(ctx context.Context, cfg Config, log *zap.Logger) (store.Store, error) {
	if cfg.PostgresURL != "" {
		return pgstore.Open(ctx, cfg.PostgresURL, log)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, DBFile), log)
}

// notifier carries "user X's secrets changed" from the write paths to the
// agent endpoint. run, when not nil, must run while the server serves
// (it keeps a cross-process notifier listening).
type notifier struct {
	notify.Notifier
	run func(ctx context.Context) error
}

// newNotifier returns the notifier chosen with the store: in-process for
// one server on SQLite, PostgreSQL LISTEN/NOTIFY when cfg.PostgresURL is
// set (several replicas share the database and must hear each other).
func newNotifier(cfg Config, log *zap.Logger) (notifier, error) {
	if cfg.PostgresURL == "" {
		return notifier{Notifier: notify.NewLocal(0)}, nil
	}
	ncfg := pgnotify.DefaultConfig()
	ncfg.URL = cfg.PostgresURL
	ncfg.Logger = log
	n, err := pgnotify.New(ncfg)
	if err != nil {
		return notifier{}, err
	}
	return notifier{Notifier: n, run: n.Run}, nil
}

func newAgentServer(cfg agentapi.Config) (agentServer, error) {
	return agentapi.New(cfg)
}
