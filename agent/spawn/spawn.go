// Package spawn is the one place where the agent builds child processes:
// startup scripts, apps, shells and SSH sessions. It owns the environment
// every child gets (the agent's base environment minus its private variables,
// then the template env, then the secret env, then per-session vars — merged
// by envmerge) and the way children are stopped (SIGTERM to the process
// group, then SIGKILL after a delay).
//
// Secret values only ever travel in a child's environment, never in its
// arguments, and never in a log line or error of this package.
package spawn

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/courierhq/courier/envmerge"
)

// Spec describes one child process. Exactly one of Command and Path is set,
// unless Login is set, in which case both may be empty to start an
// interactive login shell.
type Spec struct {
	// Command is a shell command line, run as `Shell -c Command`. It must
	// not contain secret values (it becomes a process argument).
	Command string
	// Path is the program to run directly with Args (Args excludes argv[0]).
	// A bare name is looked up in the agent's PATH.
	Path string
	// Args are the arguments after argv[0] when Path is set.
	Args []string
	// Session are per-session variables (HOME, USER, TERM, ...). They take
	// precedence over every other layer, secrets included, so callers must
	// only put variables here that they control.
	Session map[string]string
	// Client are variables a remote client asked for (SSH "env" requests,
	// already filtered by the caller). They override the template env but
	// never a secret or a Session var; a client variable that a secret
	// shadows is dropped with a log line naming it.
	Client map[string]string
	// Unset names variables of the base layer (the agent's own
	// environment) that this process must not inherit, such as TERM for
	// an SSH session without a terminal. A template, secret, client or
	// session variable of the same name is still set. Default none.
	Unset []string
	// Dir is the working directory; "" means Config.Home.
	Dir string
	// Login makes argv[0] "-" + the program's base name ("-bash"), which
	// shells take to mean a login shell. With neither Command nor Path it
	// starts Config.Shell alone, interactive.
	Login bool
}

// Spawner builds child processes. It is safe for concurrent use.
//
// Until the first Update, Command and Start wait: no child may start before
// the first apply published its environment. While any Hold is outstanding
// they wait too, and a Hold waits for the Starts already in flight, so no
// process starts while files are half-written.
type Spawner struct {
	cfg Config
	log *zap.Logger

	// mu guards the fields that follow.
	mu       sync.Mutex
	ready    bool              // an Update happened
	holds    int               // outstanding Holds
	active   int               // Command/Start calls past the gate
	changed  chan struct{}     // closed and replaced on every state change
	template map[string]string // template env layer (never mutated)
	secrets  map[string]string // secret env layer (never mutated)
	// prepared is base+template+secrets merged once per Update, so a spawn
	// only adds its session layer; nil if that merge failed.
	prepared *envmerge.Prepared
}

// snapshot is the env layers a spawn builds from.
type snapshot struct {
	layers   envmerge.Layers
	prepared *envmerge.Prepared
}

// New returns a Spawner for cfg (zero fields take their defaults). It starts
// no goroutines.
func New(cfg Config) (*Spawner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Base = append([]string(nil), cfg.Base...)
	return &Spawner{cfg: cfg, log: cfg.Logger, changed: make(chan struct{})}, nil
}

// Shell returns the shell the spawner runs commands with.
func (s *Spawner) Shell() string { return s.cfg.Shell }

// Home returns the default working directory of children.
func (s *Spawner) Home() string { return s.cfg.Home }

// WaitDelay returns the delay between SIGTERM and SIGKILL of a cancelled
// child.
func (s *Spawner) WaitDelay() time.Duration { return s.cfg.WaitDelay }

// Update publishes the template and secret env layers for every process
// started from now on; processes already running keep theirs (R4). The maps
// are copied. The first Update releases the Commands waiting for it.
func (s *Spawner) Update(templateEnv, secretEnv map[string]string) {
	t, sec := copyMap(templateEnv), copyMap(secretEnv)
	prepared, err := envmerge.Prepare(s.cfg.Env, envmerge.Layers{Base: s.cfg.Base, Template: t, Secrets: sec})
	s.mu.Lock()
	s.template, s.secrets, s.prepared, s.ready = t, sec, prepared, true
	s.broadcastLocked()
	s.mu.Unlock()

	// Operators see the warnings once per apply.
	if err != nil {
		s.log.Warn("env for new processes cannot be built", zap.Error(err))
		return
	}
	res, err := prepared.With(nil)
	if err != nil {
		// Over the Windows block limit: every spawn will fail with this
		// error; say so once per apply. It names variables, not values.
		s.log.Error("env for new processes does not fit; processes will not start", zap.Error(err))
		return
	}
	s.logResult(res, zap.WarnLevel)
}

// Hold blocks new spawns until release is called, and returns once every
// spawn already past the gate has finished starting. Holds may overlap;
// spawns wait until none is outstanding. release may be called more than
// once.
func (s *Spawner) Hold() (release func()) {
	s.mu.Lock()
	s.holds++
	s.broadcastLocked()
	for s.active > 0 {
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.holds--
			s.broadcastLocked()
			s.mu.Unlock()
		})
	}
}

// Command builds a child for spec. It waits for the first Update and for
// every Hold to be released, or returns ctx's error. The child is bound to
// ctx: when ctx ends, its process group gets SIGTERM and, WaitDelay later,
// the process gets SIGKILL. It runs in its own process group.
//
// A Hold taken after Command returns does not wait for the caller's Start;
// use Start for that guarantee.
func (s *Spawner) Command(ctx context.Context, spec Spec) (*exec.Cmd, error) {
	layers, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer s.leave()
	return s.build(ctx, spec, layers)
}

// Start is Command followed by start(cmd) (cmd.Start when start is nil),
// both while holding the gate, so a Hold waits for it. start is where
// callers attach pipes or a PTY.
func (s *Spawner) Start(ctx context.Context, spec Spec, start func(*exec.Cmd) error) (*exec.Cmd, error) {
	layers, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer s.leave()
	cmd, err := s.build(ctx, spec, layers)
	if err != nil {
		return nil, err
	}
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("spawn: start %s: %w", filepath.Base(cmd.Path), err)
	}
	return cmd, nil
}

// Env returns the environment a child with these session vars would get
// now. It does not wait: before the first Update it has no template or
// secret layer.
func (s *Spawner) Env(session map[string]string) ([]string, error) {
	s.mu.Lock()
	l := envmerge.Layers{Base: s.cfg.Base, Template: s.template, Secrets: s.secrets}
	s.mu.Unlock()
	l.Session = session
	return s.merge(l)
}

// enter waits until the spawner is ready and unheld, then counts the caller
// as active and returns a snapshot of the layers.
func (s *Spawner) enter(ctx context.Context) (snapshot, error) {
	s.mu.Lock()
	for !s.ready || s.holds > 0 {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return snapshot{}, fmt.Errorf("spawn: waiting to start: %w", ctx.Err())
		}
		s.mu.Lock()
	}
	s.active++
	snap := snapshot{layers: envmerge.Layers{Base: s.cfg.Base, Template: s.template, Secrets: s.secrets}, prepared: s.prepared}
	s.mu.Unlock()
	return snap, nil
}

func (s *Spawner) leave() {
	s.mu.Lock()
	s.active--
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *Spawner) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// build makes the exec.Cmd for spec with the given layers.
func (s *Spawner) build(ctx context.Context, spec Spec, snap snapshot) (*exec.Cmd, error) {
	l := snap.layers
	var name, cmdLine string
	var args []string
	switch {
	case spec.Command != "" && spec.Path != "":
		return nil, fmt.Errorf("%w: both a shell command and a path", ErrInvalidSpec)
	case spec.Command != "":
		name = s.cfg.Shell
		var err error
		if args, cmdLine, err = ShellArgs(runtime.GOOS, name, spec.Command); err != nil {
			return nil, err
		}
	case spec.Path != "":
		name, args = spec.Path, spec.Args
	case spec.Login:
		name = s.cfg.Shell
	default:
		return nil, fmt.Errorf("%w: no command, path or login shell", ErrInvalidSpec)
	}
	l.Session = s.sessionVars(spec.Session)
	var env []string
	var err error
	if len(spec.Unset) > 0 {
		l.Base = without(l.Base, spec.Unset)
		l.Template = s.withClient(l, spec.Client)
		env, err = s.merge(l)
	} else if len(spec.Client) == 0 && snap.prepared != nil {
		// The common case: only the session layer is new.
		env, err = s.withSession(snap.prepared, l.Session)
	} else {
		l.Template = s.withClient(l, spec.Client)
		env, err = s.merge(l)
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	switch {
	case runtime.GOOS == "windows":
	case spec.Login:
		cmd.Args[0] = "-" + filepath.Base(name)
	case spec.Command != "":
		// As sshd runs a command: argv[0] is the shell's base name, so its
		// messages read "bash: line 1: …", not "/bin/bash: line 1: …".
		cmd.Args[0] = filepath.Base(name)
	}
	cmd.Env = env
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = s.cfg.Home
	}
	cmd.SysProcAttr = groupSysProcAttr()
	setCmdLine(cmd, cmdLine)
	cmd.WaitDelay = s.cfg.WaitDelay
	cmd.Cancel = func() error { return terminate(cmd) }
	return cmd, nil
}

// without returns base less the variables named in names (exact names:
// the base is the agent's own environment on this OS).
func without(base, names []string) []string {
	out := make([]string, 0, len(base))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// sessionVars returns the session layer of a process: HOME and SHELL of
// the workspace user for every process (scripts and apps included, so "~"
// means the workspace home even when the agent's own HOME differs), under
// what the spec sets.
func (s *Spawner) sessionVars(spec map[string]string) map[string]string {
	out := make(map[string]string, len(spec)+2)
	out["HOME"], out["SHELL"] = s.cfg.Home, s.cfg.Shell
	for k, v := range spec {
		out[k] = v
	}
	return out
}

// withClient returns the template layer with the client's variables over
// it, dropping (and logging) those a secret sets.
func (s *Spawner) withClient(l envmerge.Layers, client map[string]string) map[string]string {
	if len(client) == 0 {
		return l.Template
	}
	t := copyMap(l.Template)
	if t == nil {
		t = make(map[string]string, len(client))
	}
	for k, v := range client {
		if _, ok := l.Secrets[k]; ok {
			s.log.Info("client-sent variable ignored: a secret sets it", zap.String("name", k))
			continue
		}
		t[k] = v
	}
	return t
}

// merge runs envmerge and logs its warnings at debug level.
func (s *Spawner) merge(l envmerge.Layers) ([]string, error) {
	res, err := envmerge.Merge(s.cfg.Env, l)
	if err != nil {
		// envmerge errors name variables, never values.
		return nil, fmt.Errorf("%w: %w", ErrEnv, err)
	}
	s.logResult(res, zap.DebugLevel)
	return res.Env, nil
}

// withSession adds the session layer to the prepared layers.
func (s *Spawner) withSession(p *envmerge.Prepared, session map[string]string) ([]string, error) {
	res, err := p.With(session)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEnv, err)
	}
	s.logResult(res, zap.DebugLevel)
	return res.Env, nil
}

// logResult logs the merge warnings (envmerge words them with names only)
// and an over-budget environment at lvl.
func (s *Spawner) logResult(res envmerge.Result, lvl zapcore.Level) {
	for _, w := range res.Warnings {
		s.log.Log(lvl, "child environment", zap.String("warning", w))
	}
	if res.OverBudget {
		s.log.Log(lvl, "child environment is over its size budget",
			zap.Int("bytes", res.Bytes), zap.Int("budget", s.cfg.Env.BudgetBytes))
	}
}
