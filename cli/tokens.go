package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/controlplane/identity"
)

func newTokensCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokens",
		Aliases: []string{"token"},
		Short:   "Manage personal API tokens for scripts and CI",
		Long: `Manage personal API tokens: credentials for scripts and CI that act as
you, sent like a session token (the Coder-Session-Token header, or
COURIER_SESSION_TOKEN for this CLI). A token is shown once, when it is
created; the server keeps only its hash. A read-scoped token can only read.
Revoking a token ends it at once. Tokens start with "courier_pat_", so a
leaked one is easy to search for.`,
		Example: `  courier tokens create ci --lifetime 30d --scope read
  courier tokens list
  courier tokens revoke ci`,
	}
	cmd.AddCommand(newTokensCreateCommand(), newTokensListCommand(), newTokensRevokeCommand())
	return cmd
}

func newTokensCreateCommand() *cobra.Command {
	var (
		lifetime, scope string
		output          *string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a personal API token (shown once)",
		Long: `Create a personal API token named NAME (unique among your tokens; up to 64
bytes, no '/', '?' or '#'). --lifetime is days (30d) or a duration (12h,
1d12h), at most the server's --max-token-lifetime (90 days by default).
--scope read makes a token that can only read.

The token is printed once: store it now (a CI secret, a password manager).
With -o json the output is one object with name, token and expires_at (and
the other fields of the token).`,
		Example: `  courier tokens create ci
  courier tokens create nightly-backup --lifetime 90d --scope read
  courier tokens create deploy --lifetime 12h -o json | jq -r .token`,
		Args: exactArgs(1, "the token NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			if err := identity.ValidateName(args[0]); err != nil {
				return err
			}
			if _, err := identity.ParseScope(scope); err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			if lifetime != "" {
				if _, err := identity.ParseLifetime(lifetime, 0); err != nil {
					return fmt.Errorf("--lifetime: %w", err)
				}
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), client.Me, client.CreateTokenRequest{
				Name: args[0], Lifetime: lifetime, Scope: scope,
			})
			if err != nil {
				return fmt.Errorf("create token %q: %w", args[0], err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created %s token %q, expiring %s.\n", t.Scope, cell(t.Name), utcMinute(t.ExpiresAt))
			fmt.Fprintf(out, "Token (shown once): %s\n", t.Token)
			fmt.Fprintln(cmd.ErrOrStderr(), "Store the token now; the server keeps only its hash and will not show it again.")
			return nil
		},
	}
	cmd.Flags().StringVar(&lifetime, "lifetime", "",
		"how long the token lives: days (30d) or a duration (12h); default 30d, or the server's maximum if that is shorter")
	cmd.Flags().StringVar(&scope, "scope", client.TokenScopeWrite, "read (can only read) or write")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions(
		[]string{client.TokenScopeRead, client.TokenScopeWrite}, cobra.ShellCompDirectiveNoFileComp))
	output = addOutputFlag(cmd)
	return cmd
}

func newTokensListCommand() *cobra.Command {
	var (
		user   string
		all    bool
		output *string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List personal API tokens (never the tokens themselves)",
		Long: `List your personal API tokens: name, scope, expiry and last use (time and
client address, recorded within about ten seconds). --user NAME lists
another user's and --all everyone's (admins and auditors).`,
		Example: `  courier tokens list
  courier tokens list --user alice
  courier tokens list --all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && user != "" {
				return errors.New("give --user or --all, not both")
			}
			what := "list tokens"
			if user != "" {
				what = fmt.Sprintf("list %s's tokens", user)
			}
			return show(cmd, *output, what, func(ctx context.Context, c *client.Client) ([]client.APIToken, error) {
				var (
					ts  []client.APIToken
					err error
				)
				switch {
				case all:
					ts, err = c.ListAllTokens(ctx)
				case user != "":
					ts, err = c.ListTokens(ctx, user)
				default:
					ts, err = c.ListTokens(ctx, client.Me)
				}
				if ts == nil {
					ts = []client.APIToken{}
				}
				return ts, err
			}, func(w io.Writer, _ *client.Client, ts []client.APIToken) error {
				if len(ts) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "No tokens. Create one with: courier tokens create NAME")
					return nil
				}
				headers := []string{"NAME", "SCOPE", "EXPIRES", "LAST USED", "FROM", "CREATED"}
				if all || user != "" {
					headers = append([]string{"USER"}, headers...)
				}
				t := newTable(w, headers...)
				now := time.Now()
				for _, tok := range ts {
					exp := utcMinute(tok.ExpiresAt)
					if tok.Expired {
						exp += " (expired)"
					}
					used := "never"
					if tok.LastUsedAt != nil {
						used = ago(now, *tok.LastUsedAt) + " ago"
					}
					row := []string{tok.Name, tok.Scope, exp, used, tok.LastUsedAddr, ago(now, tok.CreatedAt)}
					if all || user != "" {
						row = append([]string{tok.Username}, row...)
					}
					t.row(row...)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "list this user's tokens (yourself; anyone for admins and auditors)")
	cmd.Flags().BoolVar(&all, "all", false, "list every user's tokens (admins and auditors)")
	output = addOutputFlag(cmd)
	return cmd
}

func newTokensRevokeCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:     "revoke NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Revoke a personal API token; it stops working at once",
		Example: `  courier tokens revoke ci
  courier tokens revoke ci --user alice   # an admin revoking alice's token`,
		Args: exactArgs(1, "the token NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(true)
			if err != nil {
				return err
			}
			owner := client.Me
			if user != "" {
				owner = user
			}
			if err := c.RevokeToken(cmd.Context(), owner, args[0]); err != nil {
				return fmt.Errorf("revoke token %q: %w", args[0], err)
			}
			whose := ""
			if user != "" {
				whose = " of " + cell(user)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %q%s; it no longer works.\n", cell(args[0]), whose)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "revoke this user's token (admin)")
	return cmd
}

// utcMinute formats an instant for people: UTC, to the minute.
func utcMinute(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// lifetimeFlag is a pflag.Value for a lifetime: days ("90d") or a Go
// duration ("12h"), as identity.ParseLifetime reads it.
type lifetimeFlag struct{ d *time.Duration }

func (f lifetimeFlag) String() string {
	if f.d == nil {
		return ""
	}
	return identity.FormatLifetime(*f.d)
}

func (f lifetimeFlag) Set(s string) error {
	d, err := identity.ParseLifetime(s, 0)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (lifetimeFlag) Type() string { return "lifetime" }
