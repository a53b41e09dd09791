package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

func newUsersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "Manage users (admin), or change your password",
		Long: `Manage users: create, list, set-role, suspend, activate and delete are for
admins (list also for auditors); passwd changes your own password, or, for an
admin, resets another user's.

Roles: admin (manages users and workspaces, reads every user's secret
metadata), member (their own secrets), auditor (reads every user's secret
metadata, changes nothing of anyone else's). The last active admin cannot be
suspended, deleted or demoted.`,
		Example: `  courier users create alice --email alice@example.com
  courier users list
  courier users set-role alice auditor
  courier users suspend alice
  courier users passwd`,
	}
	cmd.AddCommand(newUsersCreateCommand(), newUsersListCommand(), newUsersSetRoleCommand(),
		newUsersStatusCommand(true), newUsersStatusCommand(false), newUsersDeleteCommand(), newUsersPasswdCommand())
	return cmd
}

func newUsersCreateCommand() *cobra.Command {
	var (
		email         string
		admin         bool
		role          string
		passwordStdin bool
		output        *string
	)
	cmd := &cobra.Command{
		Use:   "create USERNAME",
		Short: "Create a user (admin)",
		Long: `Create a user. The password is asked twice on a terminal, without echo, or
read from stdin (one line) with --password-stdin.`,
		Example: `  courier users create alice --email alice@example.com
  printf '%s\n' "$PW" | courier users create bob --email bob@example.com --password-stdin --admin
  courier users create carol --email carol@example.com --role auditor`,
		Args: exactArgs(1, "the USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			var password string
			if passwordStdin {
				password, err = readPasswordStdin(cmd)
			} else {
				password, err = promptNewPassword(cmd)
				if errors.Is(err, errNoTerminal) {
					err = fmt.Errorf("%w (pass --password-stdin)", err)
				}
			}
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), client.CreateUserRequest{
				Username: args[0], Email: email, Password: password, Admin: admin, Role: role,
			})
			if err != nil {
				return fmt.Errorf("create user %q: %w", args[0], err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), u)
			}
			if u.Role == "" { // an older server
				u.Role = map[bool]string{true: client.RoleAdmin, false: client.RoleMember}[u.Admin]
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created user %s <%s> (%s).\n", cell(u.Username), cell(u.Email), cell(u.Role))
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the user's email (required)")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an administrator (as --role admin)")
	cmd.Flags().StringVar(&role, "role", "", "the user's role: admin, member (the default) or auditor")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (one line)")
	_ = cmd.MarkFlagRequired("email")
	output = addOutputFlag(cmd)
	return cmd
}

func newUsersListCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users with their role and status (admins and auditors)",
		Example: "  courier users list\n  courier users list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, *output, "list users", func(ctx context.Context, c *client.Client) ([]client.User, error) {
				users, err := c.Users(ctx)
				if users == nil {
					users = []client.User{}
				}
				return users, err
			}, func(w io.Writer, _ *client.Client, users []client.User) error {
				t := newTable(w, "USERNAME", "EMAIL", "ROLE", "STATUS", "LOGIN", "ID", "CREATED")
				now := time.Now()
				for _, u := range users {
					t.row(u.Username, u.Email, u.Role, u.Status, u.LoginType, u.ID, ago(now, u.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}

func newUsersSetRoleCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "set-role USERNAME ROLE",
		Short: "Give a user the role admin, member or auditor (admin)",
		Example: `  courier users set-role alice auditor
  courier users set-role bob admin`,
		Args: exactArgs(2, "the USERNAME and a ROLE (admin, member or auditor)"),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []string{client.RoleAdmin, client.RoleMember, client.RoleAuditor}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			u, err := c.SetUserRole(cmd.Context(), args[0], args[1])
			if err != nil {
				return fmt.Errorf("set the role of %q: %w", args[0], err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), u)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s.\n", cell(u.Username), cell(u.Role))
			return nil
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}

// newUsersStatusCommand is "suspend" (suspend true) or "activate".
func newUsersStatusCommand(suspend bool) *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "activate USERNAME",
		Short: "Let a suspended user sign in again (admin)",
		Long: `Let a suspended user sign in again. Their old sessions and API tokens stay
ended: they log in afresh and create new tokens.`,
		Example: "  courier users activate alice",
		Args:    exactArgs(1, "the USERNAME"),
	}
	if suspend {
		cmd.Use, cmd.Short, cmd.Example = "suspend USERNAME", "Suspend a user (admin)", "  courier users suspend alice"
		cmd.Long = `Suspend a user: they can no longer sign in, their sessions and API tokens end
at once, and their agents and SSH sessions are disconnected on every replica.
Their secrets and workspaces are kept; 'courier users activate' undoes it. You
cannot suspend yourself, nor the last active admin.`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		c, err := newClient(true)
		if err != nil {
			return err
		}
		verb, do := "activate", c.ActivateUser
		if suspend {
			verb, do = "suspend", c.SuspendUser
		}
		u, err := do(cmd.Context(), args[0])
		if err != nil {
			return fmt.Errorf("%s %q: %w", verb, args[0], err)
		}
		if *output == outputJSON {
			return writeJSON(cmd.OutOrStdout(), u)
		}
		if suspend {
			fmt.Fprintf(cmd.OutOrStdout(), "Suspended %s: their sessions and API tokens ended and their agents are disconnected.\n", cell(u.Username))
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "Activated %s.\n", cell(u.Username))
		}
		return nil
	}
	output = addOutputFlag(cmd)
	return cmd
}

func newUsersDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete USERNAME",
		Aliases: []string{"rm"},
		Short:   "Delete a user with their secrets and workspaces (admin)",
		Long: `Delete a user, their secrets and their workspaces; their sessions and API
tokens end and their agents are disconnected. It cannot be undone (backups
taken before still hold their data; see the README). On a terminal you are
asked to confirm; --yes skips the question. Without a terminal, --yes is
required, so a script never deletes by accident. You cannot delete yourself,
nor the last active admin.`,
		Example: `  courier users delete alice
  courier users delete alice --yes`,
		Args: exactArgs(1, "the USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := newClient(true)
			if err != nil {
				return err
			}
			if ok, err := confirmDelete(cmd, yes, "user", name, fmt.Sprintf("Delete user %q with all their secrets and workspaces?", name)); !ok || err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), name); err != nil {
				return fmt.Errorf("delete user %q: %w", name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted user %s with their secrets and workspaces.\n", cell(name))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

func newUsersPasswdCommand() *cobra.Command {
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "passwd [USERNAME]",
		Short: "Change your password, or reset another user's (admin)",
		Long: `Change your own password: you are asked for the current one and the new one
(twice) on a terminal, without echo; with --password-stdin, stdin holds two
lines, the current password then the new one. Your other sessions are signed
out; this one stays.

An admin resets another user's password with 'courier users passwd USERNAME':
only the new password is asked (or one line on stdin), and all of that user's
sessions are signed out.

A password has at least 8 bytes and is not one of the most common passwords,
nor the username or e-mail address.`,
		Example: `  courier users passwd
  printf '%s\n%s\n' "$OLD" "$NEW" | courier users passwd --password-stdin
  printf '%s\n' "$NEW" | courier users passwd alice --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(true)
			if err != nil {
				return err
			}
			me, err := c.User(cmd.Context(), client.Me)
			if err != nil {
				return fmt.Errorf("who am I: %w", err)
			}
			own := len(args) == 0 || strings.EqualFold(args[0], me.Username)
			var req client.UpdatePasswordRequest
			switch {
			case passwordStdin:
				req, err = readPasswordLines(cmd, own)
			default:
				req, err = promptPasswords(cmd, own)
				if errors.Is(err, errNoTerminal) {
					err = fmt.Errorf("%w (pass --password-stdin)", err)
				}
			}
			if err != nil {
				return err
			}
			target := client.Me
			if !own {
				target = args[0]
			}
			if err := c.UpdatePassword(cmd.Context(), target, req); err != nil {
				return fmt.Errorf("change password: %w", err)
			}
			if own {
				fmt.Fprintln(cmd.OutOrStdout(), "Password changed. Your other sessions were signed out.")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Password of %s reset. Their sessions were signed out.\n", cell(args[0]))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the passwords from stdin: the current and the new one on two lines (only the new one for a reset)")
	return cmd
}

// promptPasswords asks on the terminal, without echo, for the current
// password (own only) and the new one twice.
func promptPasswords(cmd *cobra.Command, own bool) (client.UpdatePasswordRequest, error) {
	var req client.UpdatePasswordRequest
	var err error
	if own {
		if req.OldPassword, err = promptSecret(cmd, "Current password: "); err != nil {
			return req, err
		}
	}
	p1, err := promptSecret(cmd, "New password: ")
	if err != nil {
		return req, err
	}
	p2, err := promptSecret(cmd, "New password again: ")
	if err != nil {
		return req, err
	}
	if p1 != p2 {
		return req, errors.New("the new passwords do not match; nothing was changed")
	}
	req.Password = p1
	return req, nil
}

// readPasswordLines reads --password-stdin: two lines (current, new) for
// one's own password, one line (new) for a reset. A CR before each line
// break is dropped, as readPasswordStdin does.
func readPasswordLines(cmd *cobra.Command, own bool) (client.UpdatePasswordRequest, error) {
	var req client.UpdatePasswordRequest
	if classifyStdin(cmd.InOrStdin()) == stdinTerminal {
		return promptPasswords(cmd, own)
	}
	s, err := readAllStdin(cmd.InOrStdin())
	if err != nil {
		return req, err
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	want := 1
	if own {
		want = 2
	}
	if len(lines) != want || slices.Contains(lines, "") {
		if own {
			return req, errors.New("--password-stdin: stdin must hold two lines, the current password then the new one")
		}
		return req, errors.New("--password-stdin: stdin must hold one line, the new password")
	}
	if own {
		req.OldPassword = lines[0]
	}
	req.Password = lines[want-1]
	return req, nil
}
