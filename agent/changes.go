package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/sshd"
)

// changes is what the agent knows of its owner's secret changes: the
// revision its last apply used, and the newest revision the control plane
// announced since (proto.StreamSecretsChanged).
type changes struct {
	wake chan struct{} // one token: "a newer revision was offered"

	// mu guards the fields that follow.
	mu sync.Mutex
	// applied is the revision the last apply fetched; live the last
	// manifest's live_files.
	applied int64
	live    bool
	// wanted is the newest announced revision.
	wanted int64
	// logged is set once "changes pending" was logged since the last
	// apply, so a burst of changes logs one line.
	logged bool
}

func newChanges() *changes { return &changes{wake: make(chan struct{}, 1)} }

// offer records an announced revision.
func (c *changes) offer(rev int64) {
	c.mu.Lock()
	if rev > c.wanted {
		c.wanted = rev
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// didApply records an apply of revision rev under a manifest with the given
// live_files setting.
func (c *changes) didApply(rev int64, live bool) {
	c.mu.Lock()
	c.applied, c.live, c.logged = rev, live, false
	c.mu.Unlock()
}

// watchChanges acts on announced changes while session s is up: it waits
// for a quiet period of Config.ChangeQuiet (at most 4× that after the first
// message), then either re-applies (live files) or logs once that changes
// are pending. It returns when ctx ends.
func (a *Agent) watchChanges(ctx context.Context, s *conn.Session, ssh *sshd.Server) {
	quiet := a.cfg.ChangeQuiet
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changes.wake:
		}
		deadline := time.Now().Add(4 * quiet)
		t := time.NewTimer(quiet)
	settle:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-a.changes.wake:
				if wait := time.Until(deadline); wait > 0 {
					t.Reset(min(quiet, wait))
				}
			case <-t.C:
				break settle
			}
		}
		a.actOnChanges(ctx, s, ssh)
	}
}

// actOnChanges handles the newest announced revision: nothing if the last
// apply already had it; a full apply (scripts are not re-run) in live mode;
// otherwise one log line per pending period (R3: applied at the next start
// or reconnect). No log line names a secret or carries a value.
func (a *Agent) actOnChanges(ctx context.Context, s *conn.Session, ssh *sshd.Server) {
	c := a.changes
	c.mu.Lock()
	wanted, applied := c.wanted, c.applied
	live := a.cfg.LiveFiles || c.live
	switch {
	case wanted <= applied:
		c.mu.Unlock()
		a.log.Debug("secrets-changed message for a revision already applied", zap.Int64("revision", wanted),
			zap.Int64("applied_revision", applied))
		return
	case !live && c.logged:
		c.mu.Unlock()
		a.log.Debug("secrets changed again; still pending until the next start or reconnect", zap.Int64("revision", wanted))
		return
	case !live:
		c.logged = true
		c.mu.Unlock()
		a.log.Info("secrets changed on the control plane; they will be applied at the agent's next start or reconnect "+
			"(start it with --live-files, or set live_files in the template, to re-apply files at once)",
			zap.Int64("revision", wanted), zap.Int64("applied_revision", applied))
		return
	}
	c.mu.Unlock()
	a.log.Info("secrets changed on the control plane; re-applying now (live files): files rewritten, "+
		"new processes get the new env, running processes keep theirs",
		zap.Int64("revision", wanted), zap.Int64("applied_revision", applied))
	if err := a.apply(ctx, s, ssh); err != nil && ctx.Err() == nil {
		a.log.Warn("live re-apply failed; the secrets are applied at the next reconnect", zap.Error(err))
	}
}
