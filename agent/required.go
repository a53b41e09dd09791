package agent

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/inject"
)

// Required secrets: the template may ask for secrets (Manifest.Secrets).
// Before the startup scripts run, each apply checks the required ones
// against the secrets it just received, with the same rule as the control
// plane (inject.CheckRequirements; here "~/" resolves to the agent's home).
// While one is missing and on_missing_secrets is "wait", the scripts do
// not start: the agent reports waiting_for_secrets with the missing env
// names and paths, logs them once, and starts the scripts at the first
// apply that finds them all — on a change notification with live files,
// otherwise at the next reconnect. Once the scripts have started, later
// applies no longer gate anything.

// waiting is what the agent remembers of its wait for required secrets.
type waiting struct {
	// logged is the missing set last logged, joined; "" when none.
	logged string
}

// missingRequired returns the labels (env names, paths) of the manifest's
// required secrets that secrets do not meet, in the template's order.
func missingRequired(m proto.Manifest, secrets []inject.Secret, home string) []string {
	if len(m.Secrets) == 0 {
		return nil
	}
	reqs := make([]inject.Requirement, len(m.Secrets))
	for i, r := range m.Secrets {
		reqs[i] = inject.Requirement{Env: r.Env, File: r.File, Required: r.Required}
	}
	var out []string
	for _, st := range inject.Blocking(inject.CheckRequirements(reqs, secrets, home)) {
		out = append(out, st.Label())
	}
	return out
}

// holdForSecrets reports whether the startup scripts must keep waiting after
// an apply that found missing required secrets under manifest m. While they
// wait it reports waiting_for_secrets on s (every time, so the state
// survives a reconnect) and logs the missing names when they change.
func (a *Agent) holdForSecrets(ctx context.Context, s *conn.Session, m proto.Manifest, missing []string) bool {
	select {
	case <-a.firstApply:
		return false // the scripts have started; nothing to gate
	default:
	}
	if len(missing) == 0 {
		return false
	}
	joined := strings.Join(missing, ", ")
	first := a.wait.logged != joined
	a.wait.logged = joined
	if m.OnMissingSecrets == proto.OnMissingStart {
		if first {
			a.log.Warn("required secrets are missing; on_missing_secrets is start, so the startup scripts run anyway",
				zap.Strings("missing", missing))
		}
		return false
	}
	if first {
		a.log.Warn("required secrets are missing; the startup scripts wait until they exist (create them on the control plane)",
			zap.Strings("missing", missing), zap.Bool("live_files", a.cfg.LiveFiles || m.LiveFiles))
	}
	ctxR, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	err := s.ReportLifecycle(ctxR, proto.LifecycleReport{State: proto.StateWaitingForSecrets, At: time.Now().UTC(),
		Detail: "missing required secrets: " + joined, Missing: slices.Clone(missing)})
	if err != nil {
		a.log.Warn("could not report the wait for secrets", zap.Error(err))
	}
	return true
}
