package spawn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/envmerge"
)

// Errors returned by this package. They are wrapped with %w; test with
// errors.Is.
var (
	// ErrInvalidConfig is returned by Config.Validate and New.
	ErrInvalidConfig = errors.New("spawn: invalid config")
	// ErrInvalidSpec is returned by Command for a Spec that names no
	// program, or names both a shell command and a path.
	ErrInvalidSpec = errors.New("spawn: invalid spec")
	// ErrEnv is returned when the environment cannot be built (for example
	// a NUL byte in a name or value); the message never carries a value.
	ErrEnv = errors.New("spawn: cannot build environment")
)

// PrivateAgentVars are always removed from the base environment of every
// child, whatever Config.Env says: the agent's credentials must never be
// inherited by a workspace process, nor a CLI session token the agent
// itself inherited (`courier dev` run from a terminal where the README's
// `export COURIER_SESSION_TOKEN=…` was typed).
var PrivateAgentVars = []string{"COURIER_AGENT_TOKEN*", "COURIER_SESSION_TOKEN"}

// DefaultWaitDelay is how long a cancelled child has between SIGTERM and
// SIGKILL.
const DefaultWaitDelay = 5 * time.Second

// Config configures a Spawner. Zero fields take the defaults noted below, so
// Config{} is valid.
type Config struct {
	// Base is the process environment children start from ("NAME=value"
	// entries). nil means os.Environ() at the time New is called. The
	// agent's private variables (Env.Private and PrivateAgentVars) are
	// removed from it.
	Base []string
	// Env are the merge options. The zero value means
	// envmerge.DefaultOptions(). PrivateAgentVars are always added to
	// Env.Private.
	Env envmerge.Options
	// Logger receives merge warnings (names only, never values). nil means
	// a no-op logger.
	Logger *zap.Logger
	// Shell runs Spec.Command as `Shell -c COMMAND` (cmd.exe and PowerShell
	// get their own flags, see ShellArgs) and is the interactive shell of
	// SSH sessions. "" means DefaultShell. It must be an absolute path.
	Shell string
	// Home is the default working directory of children and the HOME the
	// SSH server reports. "" means $HOME from Base, else os.UserHomeDir,
	// else "/". It must be an absolute path.
	Home string
	// WaitDelay is the time between SIGTERM to a cancelled child's process
	// group and SIGKILL; it also bounds how long Wait waits for the
	// child's output pipes after it exits. 0 means DefaultWaitDelay.
	WaitDelay time.Duration
}

// DefaultConfig returns the configuration New uses for Config{}: every
// default filled in.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// withDefaults fills every zero field.
func (c Config) withDefaults() Config {
	if c.Base == nil {
		c.Base = os.Environ()
	}
	if c.Env.Private == nil && c.Env.BudgetBytes == 0 && !c.Env.FoldCase {
		c.Env = envmerge.DefaultOptions()
	}
	c.Env.Private = withPrivate(c.Env.Private)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Shell == "" {
		c.Shell = DefaultShell(runtime.GOOS, c.Base)
	}
	if c.Home == "" {
		c.Home = lookup(c.Base, "HOME")
		if !filepath.IsAbs(c.Home) {
			if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
				c.Home = h
			} else {
				c.Home = "/"
			}
		}
	}
	if c.WaitDelay == 0 {
		c.WaitDelay = DefaultWaitDelay
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !filepath.IsAbs(c.Shell) {
		return fmt.Errorf("%w: shell %q is not an absolute path", ErrInvalidConfig, c.Shell)
	}
	if !filepath.IsAbs(c.Home) {
		return fmt.Errorf("%w: home %q is not an absolute path", ErrInvalidConfig, c.Home)
	}
	if c.WaitDelay < 0 {
		return fmt.Errorf("%w: negative wait delay %v", ErrInvalidConfig, c.WaitDelay)
	}
	if c.Env.BudgetBytes < 0 {
		return fmt.Errorf("%w: negative env budget", ErrInvalidConfig)
	}
	return nil
}

// withPrivate returns private plus every PrivateAgentVars pattern it lacks,
// in a new slice.
func withPrivate(private []string) []string {
	out := append([]string(nil), private...)
	for _, p := range PrivateAgentVars {
		found := false
		for _, q := range out {
			if q == p {
				found = true
				break
			}
		}
		if !found {
			out = append(out, p)
		}
	}
	return out
}

// lookup returns the last value of name in env, or "".
func lookup(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// copyMap returns a copy of m (nil for nil).
func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
