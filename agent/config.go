// Package agent is courier-agent, the daemon a workspace template starts at
// boot: it keeps a connection to the control plane, applies the owner's
// secrets on every connect (files written, env published for new
// processes), runs the template's startup scripts once and its apps
// forever, and serves SSH sessions the control plane opens. The pieces live
// in subpackages (conn, spawn, scripts, sshd); this package wires them and
// owns the order of events.
package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/spawn"
)

var (
	// ErrConfig is wrapped by Config.Validate failures.
	ErrConfig = errors.New("invalid agent config")
)

// Config configures an Agent. Environment variables (read by
// cmd/courier-agent) are named in each field's comment.
type Config struct {
	// URL of the control plane (COURIER_AGENT_URL). Required.
	URL string
	// Token is the agent token (COURIER_AGENT_TOKEN); TokenFile a file
	// holding it (COURIER_AGENT_TOKEN_FILE). Exactly one is required.
	Token, TokenFile string
	// DataDir holds the agent's state file and SSH host key
	// (COURIER_AGENT_DATA_DIR). Default $XDG_STATE_HOME/courier-agent, else
	// ~/.local/state/courier-agent; on Windows
	// %LOCALAPPDATA%\courier-agent.
	DataDir string
	// Home is the workspace user's home, what "~/" expands to in file
	// secrets and where processes start. Default $HOME.
	Home string
	// Shell runs scripts, apps and sessions. Default $SHELL, else /bin/sh;
	// on Windows %COMSPEC% (see spawn.DefaultShell).
	Shell string
	// Fs is where file secrets are written. Default the OS filesystem.
	Fs afero.Fs
	// Logger is the agent's log. Default nop.
	Logger *zap.Logger
	// Base is the environment children inherit before the template and
	// secrets (private COURIER_AGENT_* variables are always removed).
	// Default os.Environ().
	Base []string
	// InitialBackoff and MaxBackoff bound reconnect waits (defaults 500ms
	// and 30s); StableAfter resets the backoff (default 1m).
	InitialBackoff, MaxBackoff, StableAfter time.Duration
	// KeepaliveInterval and WriteTimeout bound dead-connection detection
	// (defaults 15s and 10s).
	KeepaliveInterval, WriteTimeout time.Duration
	// RequestTimeout bounds the websocket handshake and each protocol
	// request to the control plane. Default 30s.
	RequestTimeout time.Duration
	// WaitingLogAfter is how long startup scripts wait for the first apply
	// before the agent logs that it is waiting. Default 3s.
	WaitingLogAfter time.Duration
	// ShutdownTimeout bounds the final lifecycle reports. Default 5s.
	ShutdownTimeout time.Duration
	// SFTPCommand is the argv of the program that serves the sftp
	// subsystem on its stdin and stdout (see sshd.ServeSFTP); courier-agent
	// passes its own executable and "sftp-server". nil means no sftp.
	SFTPCommand []string
	// Metrics, when set, receives the agent's counters (SSH sessions and
	// forwarded connections). nil means they are kept but not exported.
	Metrics prometheus.Registerer
	// AfterBoot, if set, is called once the startup scripts have run and
	// the agent has reported ready (or start_error): the burst of a boot —
	// connect, fetch, apply, scripts — is over and the agent goes idle.
	// courier-agent gives the memory the boot used back to the system
	// there (internal/memrelease).
	AfterBoot func()
	// Version is the agent's release, sent to the control plane on every
	// connect and shown in the workspace's status. Default "dev".
	Version string
	// LiveFiles (COURIER_AGENT_LIVE_FILES, --live-files) re-applies as
	// soon as the control plane says the owner's secrets changed: files
	// rewritten, env published for processes started from then on (running
	// ones keep theirs, R4), scripts not re-run. Default false: a change is
	// logged and applied at the next start or reconnect (R3). The
	// template's live_files setting turns it on too.
	LiveFiles bool
	// EnvFile (COURIER_AGENT_ENV_FILE, --env-file), when set, is a file
	// ("~/…" or absolute) the agent rewrites after every apply with the
	// env it gives new processes — the template's env under the secrets'
	// — as `export NAME='value'` lines, mode 0600, replaced atomically, so
	// that processes it does not start (`docker exec`, a login that does
	// not come through the agent) can source it. Default "": off, since it
	// puts env values at rest in the workspace, as file secrets are.
	EnvFile string
	// Confine, when set, is an absolute directory file secrets must land
	// in (filewriter.Config.Confine): `courier dev` confines them to its
	// state directory. Default "": anywhere the agent may write.
	Confine string
	// OwnFiles are more paths (files or directories) that are the agent's
	// own, such as its log file: no file secret is written to them or
	// under them, as for TokenFile, DataDir and EnvFile (see ownPaths).
	// Optional.
	OwnFiles []string
	// ChangeQuiet is how long the agent waits after a secrets-changed
	// message for more before acting on them (a burst of changes becomes
	// one apply); it acts at the latest 4×ChangeQuiet after the first.
	// Default 250ms.
	ChangeQuiet time.Duration
}

// DefaultConfig returns a Config with defaults for everything but URL and
// the token.
func DefaultConfig() Config {
	home, _ := os.UserHomeDir()
	state := os.Getenv("XDG_STATE_HOME")
	switch {
	case state == "" && runtime.GOOS == "windows" && os.Getenv("LOCALAPPDATA") != "":
		state = os.Getenv("LOCALAPPDATA")
	case state == "":
		state = filepath.Join(home, ".local", "state")
	}
	shell := spawn.DefaultShell(runtime.GOOS, os.Environ())
	return Config{
		DataDir: filepath.Join(state, "courier-agent"), Home: home, Shell: shell,
		Fs: afero.NewOsFs(), Logger: zap.NewNop(),
		InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, StableAfter: time.Minute,
		WaitingLogAfter: 3 * time.Second, ShutdownTimeout: 5 * time.Second, RequestTimeout: proto.DefaultRequestTimeout,
		Version: "dev", ChangeQuiet: 250 * time.Millisecond,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DataDir == "" {
		c.DataDir = d.DataDir
	}
	if c.Home == "" {
		c.Home = d.Home
	}
	if c.Shell == "" {
		c.Shell = d.Shell
	}
	if c.Fs == nil {
		c.Fs = d.Fs
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Base == nil {
		c.Base = os.Environ()
	}
	if c.Version == "" {
		c.Version = d.Version
	}
	for _, p := range []struct {
		v *time.Duration
		d time.Duration
	}{
		{&c.InitialBackoff, d.InitialBackoff}, {&c.MaxBackoff, d.MaxBackoff}, {&c.StableAfter, d.StableAfter},
		{&c.WaitingLogAfter, d.WaitingLogAfter}, {&c.ShutdownTimeout, d.ShutdownTimeout},
		{&c.RequestTimeout, d.RequestTimeout}, {&c.ChangeQuiet, d.ChangeQuiet},
	} {
		if *p.v == 0 {
			*p.v = p.d
		}
	}
	return c
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("%w: the control plane URL is required (COURIER_AGENT_URL)", ErrConfig)
	case conn.CheckURL(c.URL) != nil:
		// A malformed URL never gets better: refused at start, not
		// retried as if the network were down.
		return fmt.Errorf("%w: %w", ErrConfig, conn.CheckURL(c.URL))
	case c.Token == "" && c.TokenFile == "":
		return fmt.Errorf("%w: an agent token is required (COURIER_AGENT_TOKEN or COURIER_AGENT_TOKEN_FILE)", ErrConfig)
	case c.Token != "" && c.TokenFile != "":
		return fmt.Errorf("%w: give the token or the token file, not both", ErrConfig)
	case !filepath.IsAbs(c.Home):
		return fmt.Errorf("%w: home %q is not an absolute path", ErrConfig, c.Home)
	case c.ChangeQuiet < 0:
		return fmt.Errorf("%w: ChangeQuiet %s is negative", ErrConfig, c.ChangeQuiet)
	case !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("%w: data directory %q is not an absolute path", ErrConfig, c.DataDir)
	case c.Confine != "" && !filepath.IsAbs(c.Confine):
		return fmt.Errorf("%w: the confining directory %q is not an absolute path", ErrConfig, c.Confine)
	}
	return nil
}

// token returns the agent token, reading TokenFile when set.
func (c Config) token() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("reading the agent token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("the agent token file %s is empty", c.TokenFile)
	}
	return t, nil
}

// ownPaths are the absolute paths the agent reads or writes for itself,
// which file secrets must never replace: the token file (a secret there
// would lock the agent out and send its value as the token), the data
// directory (its state), the env file it rewrites after every apply, and
// OwnFiles.
func (c Config) ownPaths() []string {
	var out []string
	for _, p := range append([]string{c.TokenFile, c.DataDir, c.EnvFile}, c.OwnFiles...) {
		switch {
		case p == "":
			continue
		case strings.HasPrefix(p, "~/"):
			p = filepath.Join(c.Home, p[2:])
		case !filepath.IsAbs(p):
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			p = abs
		}
		out = append(out, filepath.Clean(p))
	}
	return out
}
