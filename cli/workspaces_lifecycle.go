package cli

import (
	"fmt"
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
--token-file it is written to that file instead (mode 0600, replaced
atomically) and nothing secret is printed: point it at the file the agent
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
			var tmp *os.File
			if tokenFile != "" {
				if tmp, err = os.CreateTemp(filepath.Dir(tokenFile), ".courier-token-*.tmp"); err != nil {
					return fmt.Errorf("token file %s: %w (nothing was rotated)", tokenFile, err)
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
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
			if tmp != nil {
				if err := writeTokenFile(tmp, tokenFile, rot.AgentToken); err != nil {
					// The old token is gone: the new one must not be lost too.
					fmt.Fprintf(stderr, "The token was rotated but could not be written to %s: %v\n", tokenFile, err)
					fmt.Fprintf(out, "New agent token (shown once): %s\n", rot.AgentToken)
					return fmt.Errorf("write token file %s: %w", tokenFile, err)
				}
				fmt.Fprintf(out, "Rotated the agent token of %q and wrote it to %s; %s.\n", name, tokenFile, expiry)
				return nil
			}
			fmt.Fprintf(out, "New agent token (shown once): %s\n", rot.AgentToken)
			fmt.Fprintf(stderr, "The old token no longer works; %s. Write the new one where the workspace's courier-agent reads it.\n", expiry)
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "write the new token to this file (mode 0600, atomically) instead of printing it")
	cmd.Flags().Var(agentLifetimeFlag{d: &lifetime}, "lifetime", "how long the new token is accepted: days (30d) or a duration (12h)")
	_ = cmd.MarkFlagFilename("token-file")
	return cmd
}

// writeTokenFile writes token and a newline to tmp, makes it 0600 and
// renames it over path.
func writeTokenFile(tmp *os.File, path, token string) error {
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// agentLifetimeFlag is a pflag.Value for a lifetime: days ("30d"), a Go
// duration ("12h") or both ("1d12h"); with neverOK also "0" or "never"
// (no expiry).
type agentLifetimeFlag struct {
	d       *time.Duration
	neverOK bool
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
	d, err := identity.ParseLifetime(s, 0)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (agentLifetimeFlag) Type() string { return "lifetime" }
