package controlplane

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/notify"
	"github.com/courierhq/courier/controlplane/store"
)

// publishTimeout bounds one Publish after a committed write.
const publishTimeout = 5 * time.Second

// publishingStore is the store the REST API and the dashboard write
// secrets through: after each committed create, update or delete it
// publishes the owner's ID, so the agents of that owner are told (R3's
// "changes pending", or a live re-apply). Wrapping the store, rather than
// each handler, keeps every write path — single, batch, dashboard — from
// forgetting it.
type publishingStore struct {
	store.Store
	notifier notify.Notifier
	log      *zap.Logger
}

func (p publishingStore) publish(ctx context.Context, userID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := p.notifier.Publish(ctx, userID); err != nil {
		p.log.Warn("could not announce a secrets change; the owner's agents apply it at their next connect",
			zap.String("user_id", userID), zap.Error(err))
	}
}

// CreateSecrets stores secs, then publishes.
func (p publishingStore) CreateSecrets(ctx context.Context, userID string, secs []store.Secret, check store.CheckFunc) error {
	err := p.Store.CreateSecrets(ctx, userID, secs, check)
	if err == nil {
		p.publish(ctx, userID)
	}
	return err
}

// UpdateSecret updates the secret, then publishes.
func (p publishingStore) UpdateSecret(ctx context.Context, userID, name string, u store.SecretUpdate, check store.CheckFunc) (store.Secret, error) {
	s, err := p.Store.UpdateSecret(ctx, userID, name, u, check)
	if err == nil {
		p.publish(ctx, userID)
	}
	return s, err
}

// DeleteSecret deletes the secret, then publishes.
func (p publishingStore) DeleteSecret(ctx context.Context, userID, name string) error {
	err := p.Store.DeleteSecret(ctx, userID, name)
	if err == nil {
		p.publish(ctx, userID)
	}
	return err
}

// The workspace lifecycle writes below publish too, so that every replica
// re-checks the connected agents of the owner at once
// (agentapi.RecheckTokens): a deleted workspace or a rotated token ends the
// agent's session within about a second (R13). A user's suspension and
// deletion publish the same way (userlifecycle.go).

// DeleteWorkspace deletes the workspace, then publishes its owner.
func (p publishingStore) DeleteWorkspace(ctx context.Context, id string) error {
	ws, err := p.Store.WorkspaceByID(ctx, id)
	if err != nil {
		return err
	}
	if err := p.Store.DeleteWorkspace(ctx, id); err != nil {
		return err
	}
	p.publish(ctx, ws.OwnerID)
	return nil
}

// RotateAgentToken replaces the workspace's agent token, then publishes
// its owner.
func (p publishingStore) RotateAgentToken(ctx context.Context, id string, tokenHash []byte, expiresAt time.Time) (store.Workspace, error) {
	ws, err := p.Store.RotateAgentToken(ctx, id, tokenHash, expiresAt)
	if err == nil {
		p.publish(ctx, ws.OwnerID)
	}
	return ws, err
}
