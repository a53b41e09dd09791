package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/filewriter"
	"github.com/courierhq/courier/inject"
)

// simHome is every simulated agent's home directory, on its own in-memory
// filesystem.
const simHome = "/home/coder"

// simAgent is one simulated agent: the real agent/conn client (Dial, Loop,
// Session requests) and the real inject/filewriter apply, on an in-memory
// filesystem, serving SSH streams with a server that runs nothing.
type simAgent struct {
	workspace string
	token     string
	user      *simUser
	writer    *filewriter.Writer

	// url is the control plane (or balancer) this agent dials; "" is
	// fleetEnv.url.
	url string

	applies   atomic.Int64 // completed applies
	lastApply atomic.Int64 // UnixNano of the last completed apply
	idle      atomic.Bool  // applied and waiting on its session
	// losses counts sessions lost (not ended by the run); seenRevision is
	// the newest secrets revision the agent applied or was told of by a
	// change notice.
	losses       atomic.Int64
	seenRevision atomic.Int64
	// mark is the state at the replica scenario's mark (see shard.go);
	// only the shard's command loop touches it.
	mark agentMark

	// mu guards sess.
	mu   sync.Mutex
	sess *conn.Session
}

func newSimAgent(workspace, token string, u *simUser) (*simAgent, error) {
	w, err := filewriter.New(filewriter.Config{Fs: afero.NewMemMapFs(), Home: simHome, Logger: zap.NewNop(), UID: -1, GID: -1})
	if err != nil {
		return nil, err
	}
	return &simAgent{workspace: workspace, token: token, user: u, writer: w}, nil
}

// drop closes the agent's session from its side, as a network blip would;
// its Loop reconnects. It reports whether there was an idle session.
func (a *simAgent) drop() bool {
	if !a.idle.Load() {
		return false
	}
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s == nil {
		return false
	}
	_ = s.Close()
	return true
}

// fleetEnv is what the agents share: where to connect, what to record.
type fleetEnv struct {
	url                     string
	connect, fetch, apply   *recorder
	errs                    *errorCounts
	ssh                     *gliderssh.Server
	firstApplied, connected atomic.Int64
}

// run runs the agent's reconnect loop until ctx ends. started is released
// once, at the first apply (or when ctx ends first).
func (a *simAgent) run(ctx context.Context, env *fleetEnv, started func()) error {
	var once sync.Once
	release := func() { once.Do(started) }
	defer release()
	loop, err := conn.NewLoop(conn.LoopConfig{
		Dial: func(ctx context.Context) (*conn.Session, error) {
			t := time.Now()
			url := a.url
			if url == "" {
				url = env.url
			}
			s, err := conn.Dial(ctx, conn.Config{URL: url, Token: a.token, AgentVersion: "courier-load"})
			if err != nil {
				if ctx.Err() == nil {
					env.errs.add(dialKind(err))
				}
				return nil, err
			}
			env.connect.add(time.Since(t))
			return s, nil
		},
		Serve: func(ctx context.Context, s *conn.Session) error {
			env.connected.Add(1)
			defer env.connected.Add(-1)
			err := a.serve(ctx, env, s, release)
			if err != nil && ctx.Err() == nil {
				env.errs.add(serveKind(err))
				if errors.Is(err, errSessionLost) {
					a.losses.Add(1)
				}
			}
			return err
		},
	})
	if err != nil {
		return err
	}
	return loop.Run(ctx)
}

func (a *simAgent) serve(ctx context.Context, env *fleetEnv, s *conn.Session, release func()) error {
	t := time.Now()
	m, err := s.Manifest(ctx)
	if err != nil {
		return fmt.Errorf("%w: manifest: %w", errFetch, err)
	}
	resp, err := s.Secrets(ctx)
	if err != nil {
		return fmt.Errorf("%w: secrets: %w", errFetch, err)
	}
	ps := resp.Secrets
	env.fetch.add(time.Since(t))

	t = time.Now()
	secrets := make([]inject.Secret, len(ps))
	for i, p := range ps {
		v, err := p.RawValue()
		if err != nil {
			return fmt.Errorf("%w: %w", errApply, err)
		}
		secrets[i] = inject.Secret{ID: p.ID, Name: p.Name, Value: v, EnvName: p.EnvName,
			FilePath: p.FilePath, UpdatedAt: p.UpdatedAt, Disabled: p.Disabled}
	}
	plan, err := inject.NewPlan(inject.Manifest{Home: simHome, Env: m.Env, FileDeliveryDisabled: m.FileDeliveryDisabled}, secrets)
	if err != nil {
		return fmt.Errorf("%w: %w", errApply, err)
	}
	rep := inject.Apply(ctx, plan, a.writer)
	// As the agent reports it (agent/report.go).
	pr := proto.ApplyReport{At: time.Now().UTC(), Warnings: rep.Warnings, SecretsRevision: resp.Revision}
	for _, o := range rep.Outcomes {
		po := proto.Outcome{Secret: o.Name, Path: o.Path, EnvName: o.EnvName, Outcome: o.Outcome, Winner: o.Winner,
			InPlace: o.InPlace}
		// A write cut short because the run is ending (the agents'
		// context) is not a failure of the control plane.
		if o.Err != nil && ctx.Err() == nil {
			env.errs.add("apply_outcome_failed")
		}
		if o.Err != nil {
			po.Error = o.Err.Error()
		}
		pr.Outcomes = append(pr.Outcomes, po)
	}
	if err := s.ReportApply(ctx, pr); err != nil {
		return fmt.Errorf("%w: %w", errReport, err)
	}
	env.apply.add(time.Since(t))
	a.seeRevision(resp.Revision)
	a.lastApply.Store(time.Now().UnixNano())
	if a.applies.Add(1) == 1 {
		env.firstApplied.Add(1)
	}
	release()

	a.mu.Lock()
	a.sess = s
	a.mu.Unlock()
	a.idle.Store(true)
	defer func() {
		a.idle.Store(false)
		a.mu.Lock()
		a.sess = nil
		a.mu.Unlock()
	}()

	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			st, kind, err := s.Accept()
			if err != nil {
				return
			}
			if kind == proto.StreamSSHPeer {
				// The agent protocol announces ssh-peer: the SSH stream
				// starts with the client's address, which the simulated
				// workspace does not need.
				if _, err := proto.ReadSSHPeer(st); err != nil {
					_ = st.Close()
					continue
				}
				kind = proto.StreamSSH
			}
			if kind != proto.StreamSSH {
				// A change notice or another kind: read to its end. No
				// simulated workspace opted into live refresh, so nothing
				// is re-applied; a notice's revision is remembered (the
				// replica scenario checks that a change reached every
				// agent).
				go func() {
					b, _ := io.ReadAll(io.LimitReader(st, proto.MaxSecretsChangedBytes))
					_ = st.Close()
					var m proto.SecretsChanged
					if kind == proto.StreamSecretsChanged && json.Unmarshal(b, &m) == nil {
						a.seeRevision(m.Revision)
					}
				}()
				continue
			}
			go env.ssh.HandleConn(st)
		}
	}()
	select {
	case <-ctx.Done():
		_ = s.Close()
		<-accepted
		return nil
	case <-s.Done():
		<-accepted
		return fmt.Errorf("%w: %v", errSessionLost, s.Err())
	}
}

// seeRevision records rev if it is newer than the newest seen.
func (a *simAgent) seeRevision(rev int64) {
	for {
		cur := a.seenRevision.Load()
		if rev <= cur || a.seenRevision.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// Error kinds of a serve, as counted in the summary.
var (
	errFetch       = errors.New("fetch")
	errApply       = errors.New("apply")
	errReport      = errors.New("report")
	errSessionLost = errors.New("session_lost")
)

func serveKind(err error) string {
	for _, k := range []error{errFetch, errApply, errReport, errSessionLost} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "serve_other"
}

// dialKind names a failed dial's kind.
func dialKind(err error) string {
	var se *conn.StatusError
	switch {
	case errors.Is(err, conn.ErrTokenRejected):
		return "dial_token_rejected"
	case errors.Is(err, conn.ErrVersionMismatch):
		return "dial_version_mismatch"
	case errors.Is(err, conn.ErrUnavailable):
		return "dial_503"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial_refused"
	case errors.As(err, &se):
		// Another status: from the control plane, or a balancer's 502 or
		// 504 when no replica took the upgrade.
		return fmt.Sprintf("dial_http_%d", se.Code)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "dial_reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "dial_too_many_open_files"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "timeout"):
		return "dial_timeout"
	}
	return "dial_other"
}

// transientKinds are what a control-plane restart causes by design; any
// other kind is a failure.
var transientKinds = map[string]bool{
	"dial_refused": true, "dial_503": true, "dial_reset": true, "session_lost": true,
}

// newNullSSHServer returns an SSH server that accepts any client and ends
// every session at once with exit status 0: the `true` of the fan-out,
// without spawning a process, so the figure is the control plane's proxy
// and the protocol, not fork/exec.
func newNullSSHServer(hostKey gliderssh.Signer) *gliderssh.Server {
	return &gliderssh.Server{
		HostSigners: []gliderssh.Signer{hostKey},
		Handler: func(s gliderssh.Session) {
			_, _ = io.Copy(io.Discard, io.LimitReader(s, 0))
			_ = s.Exit(0)
		},
		ChannelHandlers:   map[string]gliderssh.ChannelHandler{"session": gliderssh.DefaultSessionHandler},
		RequestHandlers:   map[string]gliderssh.RequestHandler{},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{},
	}
}
