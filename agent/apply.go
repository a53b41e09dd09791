package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/sshd"
	"github.com/courierhq/courier/inject"
)

// serve runs one connection: apply, then accept SSH streams until the
// session ends.
func (a *Agent) serve(ctx context.Context, s *conn.Session, ssh *sshd.Server) error {
	a.log.Info("connected to the control plane")
	a.setSession(s)
	defer a.setSession(nil)
	if err := a.apply(ctx, s, ssh); err != nil {
		if r := s.Err(); errors.Is(r, conn.ErrReplaced) || errors.Is(r, conn.ErrRevoked) {
			return r
		}
		return err
	}

	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); a.watchChanges(wctx, s, ssh) }()
	defer func() { stopWatch(); <-watched }()

	accepted := make(chan error, 1)
	go func() {
		for {
			st, kind, err := s.Accept()
			if err != nil {
				accepted <- err
				return
			}
			switch kind {
			case proto.StreamSSH:
				go func() { _ = ssh.HandleConn(ctx, st) }()
			case proto.StreamSSHPeer:
				go func() {
					pc, err := withSSHPeer(st)
					if err != nil {
						a.log.Warn("ignoring an SSH stream with a malformed peer header", zap.Error(err))
						_ = st.Close()
						return
					}
					_ = ssh.HandleConn(ctx, pc)
				}()
			case proto.StreamSecretsChanged:
				go func() {
					m, err := conn.ReadSecretsChanged(st)
					if err != nil {
						a.log.Warn("ignoring a malformed secrets-changed message", zap.Error(err))
						return
					}
					a.changes.offer(m.Revision)
				}()
			default:
				a.log.Warn("unknown stream kind from the control plane; closing it", zap.Uint8("kind", kind))
				_ = st.Close()
			}
		}
	}()
	select {
	case <-ctx.Done():
		stopWatch()
		<-watched
		a.shutdown(ssh)
		_ = s.Close()
		<-accepted
		return nil
	case <-s.Done():
		<-accepted
		if err := s.Err(); err != nil {
			return fmt.Errorf("session ended: %w", err)
		}
		return fmt.Errorf("session ended")
	}
}

// apply fetches the manifest and secrets and applies them: files written,
// env published for new processes, the template's SSH policy set. The
// spawner is held throughout, so no script, app or session starts against a
// half-applied state.
func (a *Agent) apply(ctx context.Context, s *conn.Session, ssh *sshd.Server) error {
	m, err := s.Manifest(ctx)
	if err != nil {
		return fmt.Errorf("fetching the manifest: %w", err)
	}
	resp, err := s.Secrets(ctx)
	if err != nil {
		return fmt.Errorf("fetching secrets: %w", err)
	}
	ps := resp.Secrets
	secrets := make([]inject.Secret, len(ps))
	for i, p := range ps {
		// A malformed value encoding is the wire's fault, not one secret's:
		// nothing is applied from an answer the agent cannot read.
		v, err := p.RawValue()
		if err != nil {
			return fmt.Errorf("fetching secrets: %w: %w", conn.ErrBadAnswer, err)
		}
		secrets[i] = inject.Secret{ID: p.ID, Name: p.Name, Value: v, EnvName: p.EnvName,
			FilePath: p.FilePath, UpdatedAt: p.UpdatedAt, Disabled: p.Disabled, NotInScope: p.NotInScope}
	}
	// Before any script runs (the first apply releases them) and before
	// processes get the new env.
	a.fwd.setSecrets(values(secrets))
	plan, err := inject.NewPlan(inject.Manifest{Home: a.cfg.Home, Env: m.Env, FileDeliveryDisabled: m.FileDeliveryDisabled}, secrets)
	if err != nil {
		return err
	}
	release := a.spawner.Hold()
	rep := inject.Apply(ctx, plan, a.writer)
	a.spawner.Update(m.Env, plan.Env)
	a.writeEnvFile(ctx, m.Env, plan.Env)
	ssh.SetPolicy(sshd.Policy{DisableForwarding: m.SSH.DisableForwarding, GatewayPorts: m.SSH.GatewayPorts})
	release()

	a.logReport(rep)
	a.changes.didApply(resp.Revision, m.LiveFiles)
	pr := wireReport(rep, time.Now().UTC())
	pr.LeftBehind = a.trackFiles(rep)
	pr.SecretsRevision, pr.LiveFiles = resp.Revision, a.cfg.LiveFiles || m.LiveFiles
	ctxR, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.ReportApply(ctxR, pr); err != nil {
		a.log.Warn("could not report the apply to the control plane", zap.Error(err))
	}
	if a.holdForSecrets(ctx, s, m, missingRequired(m, secrets, a.cfg.Home)) {
		return nil
	}
	a.firstOnce.Do(func() {
		a.manifest = m
		close(a.firstApply)
	})
	return nil
}

// logReport logs one line per secret (no values) and the plan's warnings.
// Collision warnings themselves are logged by the filewriter at WARN.
func (a *Agent) logReport(rep inject.Report) {
	counts := map[string]int{}
	for _, o := range rep.Outcomes {
		counts[o.Outcome]++
		fields := []zap.Field{zap.String("secret", o.Name), zap.String("outcome", o.Outcome)}
		if o.Path != "" {
			fields = append(fields, zap.String("path", o.Path))
		}
		if o.EnvName != "" {
			fields = append(fields, zap.String("env", o.EnvName))
		}
		if o.InPlace != "" { // the filewriter warned once already
			fields = append(fields, zap.String("in_place", o.InPlace))
		}
		switch {
		case o.Err != nil:
			a.log.Error("secret not applied", append(fields, zap.Error(o.Err))...)
		case o.Winner != "":
			// The filewriter's one warning per collision names every
			// secret in it (R8); this line is the loser's own outcome.
			a.log.Info("secret lost a file collision", append(fields, zap.String("kept", o.Winner))...)
		case o.Outcome == proto.OutcomeDisabled:
			a.log.Info("secret is disabled; not applied (a file written before stays)", fields...)
		case o.Outcome == proto.OutcomeNotInScope:
			a.log.Info("secret is scoped to other workspaces; not applied here (a file written before stays)", fields...)
		default:
			a.log.Info("secret applied", fields...)
		}
	}
	for _, w := range rep.Warnings {
		a.log.Warn("apply warning", zap.String("warning", w))
	}
	a.log.Info("secrets applied", zap.Int("secrets", len(rep.Outcomes)), zap.Any("outcomes", counts))
}

// values lists the secrets' values, for masking output.
func values(secrets []inject.Secret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, s.Value)
	}
	return out
}
