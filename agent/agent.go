package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
	"github.com/courierhq/courier/agent/sshd"
	"github.com/courierhq/courier/envmerge"
	"github.com/courierhq/courier/filewriter"
)

// Agent is the daemon. New starts nothing; Run does the work.
//
// Order of events (R3, R6): on every connect the secrets are fetched and
// applied while the spawner is held, so no process starts against
// half-written files; the first successful apply of the process releases
// the startup scripts, then the apps. SSH streams are accepted only after a
// connection's apply has finished. When the control plane says the owner's
// secrets changed, the agent logs that they are pending, or, with live
// files, applies again at once the same way (scripts are not re-run);
// see changes.go.
type Agent struct {
	cfg Config
	log *zap.Logger
	// token is the agent token last read; tokenGen counts the times it
	// changed. Both are used by the reconnect loop's goroutine only (see
	// currentToken).
	token    string
	tokenGen uint64

	spawner *spawn.Spawner
	// writer writes file secrets, never onto the agent's own files;
	// ownWriter writes those files (state, env file).
	writer, ownWriter *filewriter.Writer
	fwd               *forwarder
	sshEvents         *sshEvents
	sshMetrics        *sshd.Metrics

	// firstApply is closed after the first successful apply; manifest is
	// the manifest of that apply (written before the close).
	// changes tracks announced secret changes (changes.go).
	changes *changes

	firstApply chan struct{}
	firstOnce  sync.Once
	manifest   proto.Manifest
	// wait is used by apply only, which runs one at a time (required.go).
	wait waiting

	// shutdownOnce runs the shutdown sequence once: on the live session
	// when there is one, else without it.
	shutdownOnce sync.Once
	appsDone     chan struct{}

	// mu guards the fields that follow.
	mu      sync.Mutex
	current *conn.Session
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New validates cfg and returns an Agent. It reads the token file (and
// re-reads it at every connect) but starts nothing.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tok, err := cfg.token()
	if err != nil {
		return nil, err
	}
	sp, err := spawn.New(spawn.Config{Base: cfg.Base, Env: envmerge.DefaultOptions(), Logger: cfg.Logger.Named("spawn"),
		Shell: cfg.Shell, Home: cfg.Home})
	if err != nil {
		return nil, err
	}
	// Two writers with one set of rules: secrets may not land on the
	// agent's own files; the agent's own writes (its state, the env file)
	// go there by definition.
	fwc := filewriter.Config{Fs: cfg.Fs, Home: cfg.Home, Logger: cfg.Logger.Named("files"), UID: -1, GID: -1}
	own, err := filewriter.New(fwc)
	if err != nil {
		return nil, err
	}
	fwc.Protected, fwc.Confine = cfg.ownPaths(), cfg.Confine
	w, err := filewriter.New(fwc)
	if err != nil {
		return nil, err
	}
	m, err := sshd.NewMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, token: tok, spawner: sp, writer: w, ownWriter: own, sshMetrics: m,
		firstApply: make(chan struct{}), done: make(chan struct{}), changes: newChanges()}
	a.fwd = newForwarder(a.session, cfg.Logger)
	a.sshEvents = newSSHEvents(a.session, cfg.Logger)
	return a, nil
}

// currentToken returns the token to present at the next connect: the
// token file is re-read every time, so an operator rotates the token by
// writing the new one there (no restart). A file that cannot be read or is
// empty right now (being rewritten in place) leaves the last token in use,
// with a warning. A token given directly (COURIER_AGENT_TOKEN) cannot be
// re-read. The token itself is never logged.
func (a *Agent) currentToken() string {
	if a.cfg.TokenFile == "" {
		return a.token
	}
	tok, err := a.cfg.token()
	switch {
	case err != nil:
		a.log.Warn("could not re-read the agent token file; using the token read before", zap.Error(err))
	case tok != a.token:
		a.token = tok
		a.tokenGen++
		a.log.Info("read a new agent token from the token file", zap.String("token_file", a.cfg.TokenFile))
	}
	return a.token
}

// refusedHint is what to do about a refused token, by where it came from.
func (a *Agent) refusedHint() string {
	if a.cfg.TokenFile != "" {
		return "If the token was rotated, revoked or expired, rotate it (courier workspaces rotate-token WORKSPACE --token-file FILE) " +
			"and write the new token to this agent's token file " + a.cfg.TokenFile + ": it is re-read at every attempt, no restart needed"
	}
	return "If the token was rotated, revoked or expired, rotate it (courier workspaces rotate-token WORKSPACE); this agent's token " +
		"came from COURIER_AGENT_TOKEN, which cannot be re-read: restart it with the new token, or better give it --token-file " +
		"(COURIER_AGENT_TOKEN_FILE), which is re-read at every reconnect"
}

// session returns the current control plane session, or nil.
func (a *Agent) session() *conn.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current
}

func (a *Agent) setSession(s *conn.Session) {
	a.mu.Lock()
	a.current = s
	a.mu.Unlock()
}

// Run runs the agent until ctx is cancelled or Close is called; both are a
// clean exit (nil). On the way out it reports shutting_down, stops the apps
// and SSH sessions, and reports off.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.mu.Unlock()
	defer close(a.done)
	defer cancel()

	hostKey, err := sshd.LoadOrCreateHostKey(a.cfg.Fs, filepath.Join(a.cfg.DataDir, "ssh_host_ed25519_key"))
	if err != nil {
		return err
	}
	ssh, err := sshd.New(sshd.Config{Spawner: a.spawner, HostKey: hostKey, Logger: a.log.Named("ssh"),
		SFTPCommand: a.cfg.SFTPCommand, Metrics: a.sshMetrics, OnEvent: a.sshEvents.add})
	if err != nil {
		return err
	}
	a.log.Info("courier-agent starting", zap.String("version", a.cfg.Version), zap.String("control_plane", a.cfg.URL), zap.String("home", a.cfg.Home),
		zap.String("data_dir", a.cfg.DataDir), zap.String("protocol", proto.Version))

	loop, err := conn.NewLoop(conn.LoopConfig{
		Dial: func(ctx context.Context) (*conn.Session, error) {
			return conn.Dial(ctx, conn.Config{URL: a.cfg.URL, Token: a.currentToken(), AgentVersion: a.cfg.Version,
				KeepaliveInterval: a.cfg.KeepaliveInterval, WriteTimeout: a.cfg.WriteTimeout,
				RequestTimeout: a.cfg.RequestTimeout})
		},
		Serve:           func(ctx context.Context, s *conn.Session) error { return a.serve(ctx, s, ssh) },
		InitialInterval: a.cfg.InitialBackoff, MaxInterval: a.cfg.MaxBackoff, StableAfter: a.cfg.StableAfter,
		CredentialGeneration: func() uint64 { return a.tokenGen },
		RefusedHint:          a.refusedHint(),
		Logger:               a.log.Named("conn"),
	})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	a.appsDone = make(chan struct{})
	wg.Add(3)
	go func() { defer wg.Done(); a.fwd.run(ctx) }()
	go func() { defer wg.Done(); a.sshEvents.run(ctx) }()
	go func() { defer wg.Done(); defer close(a.appsDone); a.lifecycle(ctx) }()
	_ = loop.Run(ctx) // returns when ctx ends
	a.shutdown(ssh)
	wg.Wait()
	if s := a.session(); s != nil {
		_ = s.Close()
	}
	a.log.Info("courier-agent stopped")
	return nil
}

// shutdown reports shutting_down, waits for the apps to stop (the
// lifecycle goroutine returns once they have exited), closes SSH sessions
// and reports off. serve calls it while its session is still up, so the
// control plane hears both states.
func (a *Agent) shutdown(ssh interface{ Close() error }) {
	a.shutdownOnce.Do(func() {
		a.report(proto.StateShuttingDown, "")
		<-a.appsDone
		_ = ssh.Close()
		a.report(proto.StateOff, "")
	})
}

// Close stops a running agent and waits for Run to return. It is safe to
// call more than once, and before Run.
func (a *Agent) Close() error {
	a.mu.Lock()
	wasClosed := a.closed
	a.closed = true
	cancel := a.cancel
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	if !wasClosed {
		<-a.done
	}
	return nil
}

// report sends a lifecycle state on the current session, best effort and
// bounded: the control plane may be unreachable.
func (a *Agent) report(state, detail string) {
	s := a.session()
	if s == nil {
		a.log.Info("lifecycle", zap.String("state", state), zap.String("detail", detail), zap.Bool("reported", false))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := s.ReportLifecycle(ctx, proto.LifecycleReport{State: state, At: time.Now().UTC(), Detail: detail})
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("could not report lifecycle state", zap.String("state", state), zap.Error(err))
		return
	}
	a.log.Info("lifecycle", zap.String("state", state), zap.String("detail", detail))
}
