package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/identity"
)

func newWorkspacesDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a workspace (its owner or an admin)",
		Long: `Delete a workspace: its agent token stops working at once and its connected
agent is disconnected within about a second, on every control-plane replica.
The owner's secrets are not the workspace's and are kept; files the agent
wrote stay on the workspace's disk.

NAME is one of your workspaces, OWNER/NAME, or a workspace ID. On a
terminal you are asked to confirm; --yes skips the question. Without a
terminal --yes is required, so a script never deletes by accident.`,
		Example: `  courier workspaces delete dev
  courier workspaces delete alice/dev --yes`,
		Args: exactArgs(1, "the workspace NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := newClient(true)
			if err != nil {
				return err
			}
			if ok, err := confirmDelete(cmd, yes, "workspace", name, fmt.Sprintf("Delete workspace %q and disconnect its agent?", name)); !ok || err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), name); err != nil {
				return fmt.Errorf("delete workspace %q: %w", name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted workspace %q; its agent token no longer works.\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

func newWorkspacesRotateTokenCommand() *cobra.Command {
	var (
		tokenFile string
		lifetime  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate-token NAME",
		Short: "Give a workspace a new agent token (its owner or an admin)",
		Long: `Give a workspace a new agent token. The old token stops working at once: the
agent connected with it is disconnected within about a second on every
control-plane replica, and its reconnects are refused until it has the new
token.

The new token is printed once (the server keeps only its hash). With
--token-file it is written to that file instead and nothing secret is
printed: an existing file is rewritten in place, keeping its owner, group
and mode (and a container's bind mount of it); a new one is created 0600: point it at the file the agent
reads (courier-agent --token-file, COURIER_AGENT_TOKEN_FILE) and the agent
picks the new token up at its next reconnect, without a restart. An agent
given its token in COURIER_AGENT_TOKEN cannot re-read it: restart it with
the new token, or switch it to a token file.

--lifetime sets how long the new token is accepted (days as 30d, or a
duration as 12h); by default the server's --agent-token-lifetime (which
may be never).`,
		Example: `  courier workspaces rotate-token dev
  courier workspaces rotate-token alice/dev --token-file /etc/courier/agent-token --lifetime 30d`,
		Args: exactArgs(1, "the workspace NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := newClient(true)
			if err != nil {
				return err
			}
			var req client.RotateAgentTokenRequest
			if cmd.Flags().Changed("lifetime") {
				req.Lifetime = identity.FormatLifetime(lifetime)
			}
			// The file is prepared before the rotation, so an unwritable
			// path fails before the old token stops working.
			var tf *tokenFileWriter
			if tokenFile != "" {
				if tf, err = openTokenFile(tokenFile); err != nil {
					return fmt.Errorf("token file %s: %w (nothing was rotated)", tokenFile, err)
				}
				defer tf.close()
			}
			rot, err := c.RotateAgentToken(cmd.Context(), name, req)
			if err != nil {
				return fmt.Errorf("rotate the agent token of %q: %w", name, err)
			}
			out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			expiry := "it does not expire"
			if rot.ExpiresAt != nil {
				expiry = "it expires at " + rot.ExpiresAt.UTC().Format(time.RFC3339)
			}
			if tf != nil {
				if err := tf.write(rot.AgentToken); err != nil {
					// The old token is gone: the new one must not be lost too.
					fmt.Fprintf(stderr, "The token was rotated but could not be written to %s: %v\n", tokenFile, err)
					fmt.Fprintf(out, "New agent token (shown once): %s\n", rot.AgentToken)
					return fmt.Errorf("write token file %s: %w", tokenFile, err)
				}
				fmt.Fprintf(out, "Rotated the agent token of %q and wrote it to %s; %s.\n", name, tokenFile, expiry)
				if fi, err := os.Stat(tokenFile); err == nil && fi.Mode().Perm()&0o007 != 0 {
					fmt.Fprintf(stderr, "warning: %s is readable by other users (mode %v); the agent needs only its owner to read it: chmod o-rwx %s\n",
						tokenFile, fi.Mode().Perm(), tokenFile)
				}
				return nil
			}
			fmt.Fprintf(out, "New agent token (shown once): %s\n", rot.AgentToken)
			fmt.Fprintf(stderr, "The old token no longer works; %s. Write the new one where the workspace's courier-agent reads it.\n", expiry)
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "write the new token to this file instead of printing it (in place, keeping its owner and mode; a new file is 0600)")
	cmd.Flags().Var(agentLifetimeFlag{d: &lifetime}, "lifetime", "how long the new token is accepted: days (30d) or a duration (12h)")
	_ = cmd.MarkFlagFilename("token-file")
	return cmd
}

// tokenFileWriter writes a rotated token to --token-file. An existing file
// is rewritten in place: it keeps its inode, so its owner, group and mode
// stay (the agent runs as the workspace user, rotation often as root) and
// a container that bind-mounts the file sees the new token. A new file is
// created 0600 beside the path and renamed over it.
type tokenFileWriter struct {
	path string
	f    *os.File // the existing file, opened for writing; or
	tmp  *os.File // the new file, to be renamed
}

// openTokenFile opens path for the rotation's write, before the rotation.
func openTokenFile(path string) (*tokenFileWriter, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &tokenFileWriter{path: path, f: f}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".courier-token-*.tmp")
	if err != nil {
		return nil, err
	}
	return &tokenFileWriter{path: path, tmp: tmp}, nil
}

// write writes token and a newline. In place, the new bytes go over the
// old in one write before the file is cut to their length, so a reader
// never finds it empty.
func (w *tokenFileWriter) write(token string) error {
	data := []byte(token + "\n")
	if w.f != nil {
		if _, err := w.f.WriteAt(data, 0); err != nil {
			return err
		}
		if err := w.f.Truncate(int64(len(data))); err != nil {
			return err
		}
		return w.f.Sync()
	}
	if err := w.tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := w.tmp.Write(data); err != nil {
		return err
	}
	if err := w.tmp.Sync(); err != nil {
		return err
	}
	if err := w.tmp.Close(); err != nil {
		return err
	}
	return os.Rename(w.tmp.Name(), w.path)
}

// close releases what openTokenFile took (after write, or instead of it).
func (w *tokenFileWriter) close() {
	if w.f != nil {
		_ = w.f.Close()
	}
	if w.tmp != nil {
		_ = w.tmp.Close()
		_ = os.Remove(w.tmp.Name()) // renamed already, or never to be
	}
}

// agentLifetimeFlag is a pflag.Value for a lifetime: days ("30d"), a Go
// duration ("12h") or both ("1d12h"); with neverOK also "0" or "never"
// (no expiry).
type agentLifetimeFlag struct {
	d       *time.Duration
	neverOK bool
	// min, when set, is a floor above identity.MinLifetime, said in the
	// flag's own error (--audit-retention: a day).
	min time.Duration
}

func (f agentLifetimeFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	return identity.FormatLifetime(*f.d)
}

func (f agentLifetimeFlag) Set(s string) error {
	if f.neverOK && (s == "0" || s == "never") {
		*f.d = 0
		return nil
	}
	d, err := identity.ParseLifetimeAtLeast(s, f.min, 0)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (agentLifetimeFlag) Type() string { return "lifetime" }
