package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
	"github.com/courierhq/courier/inject"
	"github.com/courierhq/courier/internal/strictjson"
	"github.com/courierhq/courier/internal/utf8clip"
)

// routes is the HTTP handler served on every agent's yamux session, built
// once; the session a request came on is in its context (sessionOf).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+proto.PathManifest, func(w http.ResponseWriter, r *http.Request) {
		s.manifest(w, r, sessionOf(r))
	})
	mux.HandleFunc("GET "+proto.PathSecrets, func(w http.ResponseWriter, r *http.Request) {
		s.secrets(w, r, sessionOf(r))
	})
	mux.HandleFunc("POST "+proto.PathLifecycle, func(w http.ResponseWriter, r *http.Request) {
		s.lifecycle(w, r, sessionOf(r).ws.ID)
	})
	mux.HandleFunc("POST "+proto.PathLogs, func(w http.ResponseWriter, r *http.Request) {
		s.logs(w, r, sessionOf(r))
	})
	mux.HandleFunc("POST "+proto.PathRuns, func(w http.ResponseWriter, r *http.Request) {
		s.runs(w, r, sessionOf(r))
	})
	mux.HandleFunc("POST "+proto.PathSSHEvents, func(w http.ResponseWriter, r *http.Request) {
		s.sshEvents(w, r, sessionOf(r))
	})
	mux.HandleFunc("POST "+proto.PathApply, func(w http.ResponseWriter, r *http.Request) {
		sess := sessionOf(r)
		s.apply(w, r, sess)
		sess.admitted() // its connect, fetch and apply are done
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(proto.HeaderVersion); v != proto.Version {
			writeError(w, proto.StatusVersionMismatch, fmt.Sprintf(
				"agent protocol version mismatch: the agent speaks %q, this control plane speaks %q", v, proto.Version))
			return
		}
		if sessionOf(r).revoked.Load() {
			writeError(w, http.StatusUnauthorized, msgTokenInvalid)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, proto.MaxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads an agent's JSON body into v. Like the REST API it refuses,
// with a 400 naming the problem, a body encoding/json would read
// differently from its sender (invalid UTF-8, a repeated key).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the body failed")
		return false
	}
	if err := strictjson.Check(data); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request, sess *session) {
	var ws store.Workspace
	var owner store.User
	if first := sess.first.Swap(nil); first != nil {
		// The agent's first request, moments after its connect read both
		// rows: a change since is as if it came just after this answer.
		ws, owner = first.ws, first.owner
	} else {
		var err error
		if ws, err = s.cfg.Store.WorkspaceByID(r.Context(), sess.ws.ID); err != nil {
			s.internal(w, "loading workspace", err)
			return
		}
		if owner, err = s.cfg.Store.UserByID(r.Context(), ws.OwnerID); err != nil {
			s.internal(w, "loading workspace owner", err)
			return
		}
	}
	env := ws.Template.Env
	if env == nil {
		env = map[string]string{}
	}
	writeJSON(w, proto.Manifest{
		WorkspaceID: ws.ID, WorkspaceName: ws.Name, OwnerID: owner.ID, OwnerName: owner.Username,
		Env: env, Scripts: ws.Template.Scripts, Apps: ws.Template.Apps,
		FileDeliveryDisabled: s.cfg.FileDeliveryDisabled, SSH: ws.Template.SSH, LiveFiles: ws.Template.LiveFiles,
		Secrets: ws.Template.Secrets, OnMissingSecrets: ws.Template.OnMissingSecrets,
	})
}

// secrets sends the owner's secrets with their values. A value that cannot
// be opened (a key removed from the keyring) is left out and logged by name;
// the others are still delivered.
// The list and its revision are read together (store.SecretsAtRevision),
// so the list is at least as new as the revision the agent is told.
//
// The workspace is the session's, as its token admitted it: a workspace is
// never renamed nor given to another owner, and one deleted (or whose token
// was rotated) has its sessions closed by RecheckTokens, on every replica,
// within about a second (R13); its requests are refused from then on. Not
// reading the workspace again halves the reads of every fetch, which every
// agent makes on each connect and on each change of its owner's secrets.
func (s *Server) secrets(w http.ResponseWriter, r *http.Request, sess *session) {
	ws := sess.ws
	stored, rev, err := s.cfg.Store.SecretsAtRevision(r.Context(), ws.OwnerID)
	if err != nil {
		s.internal(w, "listing secrets", err)
		return
	}
	out := proto.SecretsResponse{Secrets: make([]proto.Secret, 0, len(stored)), Revision: rev}
	for _, sec := range stored {
		if !inject.InScope(sec.Workspaces, ws.Name) {
			// Scoped away (R13: its value goes only to the workspaces it is
			// scoped to): the agent learns its name alone, to treat it like
			// a deleted secret and report not_in_scope.
			out.Secrets = append(out.Secrets, proto.Secret{ID: sec.ID, Name: sec.Name, UpdatedAt: sec.UpdatedAt, NotInScope: true})
			continue
		}
		if !sec.Enabled {
			// Paused: the agent learns the secret exists (to report it and
			// keep its file, R7) but not its value.
			ps := proto.Secret{ID: sec.ID, Name: sec.Name, EnvName: sec.EnvName, FilePath: sec.FilePath,
				UpdatedAt: sec.UpdatedAt, Disabled: true}
			if s.cfg.FileDeliveryDisabled {
				ps.FilePath = ""
			}
			out.Secrets = append(out.Secrets, ps)
			continue
		}
		value, err := s.cfg.Open(sec)
		if err != nil {
			s.log.Error("cannot open a stored secret; it is not delivered", zap.String("workspace", ws.Name),
				zap.String("secret", sec.Name), zap.Error(err))
			continue
		}
		ps := proto.Secret{ID: sec.ID, Name: sec.Name, EnvName: sec.EnvName,
			FilePath: sec.FilePath, UpdatedAt: sec.UpdatedAt}
		ps.SetValue(value)
		if s.cfg.FileDeliveryDisabled {
			ps.FilePath = ""
		}
		out.Secrets = append(out.Secrets, ps)
	}
	sess.served.Store(rev)
	s.log.Debug("secrets sent to agent", zap.String("workspace", ws.Name), zap.Int("count", len(out.Secrets)),
		zap.Int64("revision", rev))
	writeJSON(w, out)
}

var states = []string{proto.StateStarting, proto.StateWaitingForSecrets, proto.StateReady, proto.StateStartError, proto.StateShuttingDown, proto.StateOff}

func (s *Server) lifecycle(w http.ResponseWriter, r *http.Request, id string) {
	var rep proto.LifecycleReport
	if !decode(w, r, &rep) {
		return
	}
	if !slices.Contains(states, rep.State) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown lifecycle state %q", rep.State))
		return
	}
	at := rep.At
	if at.IsZero() {
		at = s.cfg.Now()
	}
	if err := s.cfg.Store.SetWorkspaceState(r.Context(), id, rep.State, at.UTC()); err != nil {
		s.internal(w, "saving lifecycle state", err)
		return
	}
	fields := []zap.Field{zap.String("workspace_id", id), zap.String("state", rep.State), zap.String("detail", rep.Detail)}
	if len(rep.Missing) > 0 {
		// Env names and paths of missing secrets, never values; bounded, as
		// the agent holding this token may be hostile.
		missing := rep.Missing[:min(len(rep.Missing), 64)]
		clipped := make([]string, len(missing))
		for i, m := range missing {
			clipped[i] = utf8clip.Clip(m, 256)
		}
		fields = append(fields, zap.Strings("missing", clipped))
	}
	s.log.Info("agent lifecycle", fields...)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, sess *session) {
	id := sess.ws.ID
	var rep proto.ApplyReport
	if !decode(w, r, &rep) {
		return
	}
	// The revision this session was served is what the apply used; the
	// agent's own claim is not needed.
	rep.SecretsRevision = sess.served.Load()
	for _, o := range rep.Outcomes {
		fields := []zap.Field{zap.String("workspace_id", id), zap.String("secret", o.Secret),
			zap.String("outcome", o.Outcome)}
		if o.Path != "" {
			fields = append(fields, zap.String("path", o.Path))
		}
		if o.Error != "" {
			fields = append(fields, zap.String("error", o.Error))
			s.log.Warn("agent failed to apply a secret", fields...)
			continue
		}
		if o.InPlace != "" {
			s.log.Warn("agent wrote a secret's file in place, not atomically", append(fields, zap.String("in_place", o.InPlace))...)
			continue
		}
		s.log.Debug("agent applied a secret", fields...)
	}
	if err := s.status.wait(r.Context(), store.AgentEvent{Kind: store.AgentEventApplied, WorkspaceID: id, Apply: rep}); err != nil {
		s.internal(w, "saving the apply report", err)
		return
	}
	if s.cfg.OnApply != nil {
		s.cfg.OnApply(sess.ws.workspace(), rep)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "the workspace no longer exists")
		return
	}
	if s.dbUnavailable(w, err) {
		return
	}
	s.log.Error("agent request failed", zap.String("while", what), zap.Error(err))
	writeError(w, http.StatusInternalServerError, "internal error")
}

// retryAfterUnavailable is the Retry-After of an agent request refused
// while the database is unavailable, as the REST API's.
const retryAfterUnavailable = "5"

// dbUnavailable answers a request that failed because the database is
// unavailable or full, and reports whether err was that: 503 with
// Retry-After (the agent waits that long before its next attempt instead
// of retrying at once), a message that says which and never where the
// database is. The first such failure of an episode is logged; the rest
// are not, until dbAvailable.
func (s *Server) dbUnavailable(w http.ResponseWriter, err error) bool {
	kind := store.Unavailable(err)
	if kind == nil {
		return false
	}
	if !s.dbDown.Swap(true) {
		s.log.Error("the database is unavailable: agent requests get 503 until it is back",
			zap.String("reason", kind.Error()), zap.Error(err))
	}
	w.Header().Set("Retry-After", retryAfterUnavailable)
	msg := "the database is unavailable; try again in a few seconds"
	if errors.Is(kind, store.ErrStorageFull) {
		msg = "the control plane's storage is full; try again later"
	}
	writeError(w, http.StatusServiceUnavailable, msg)
	return true
}

// dbAvailable ends an episode dbUnavailable logged, logging that once.
func (s *Server) dbAvailable() {
	if s.dbDown.Load() && s.dbDown.CompareAndSwap(true, false) {
		s.log.Info("the database is available again for agent requests")
	}
}
