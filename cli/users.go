package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

func newUsersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "Manage users (admin)",
		Example: "  courier users create alice --email alice@example.com\n  courier users list",
	}
	cmd.AddCommand(newUsersCreateCommand(), newUsersListCommand())
	return cmd
}

func newUsersCreateCommand() *cobra.Command {
	var (
		email         string
		admin         bool
		passwordStdin bool
		output        *string
	)
	cmd := &cobra.Command{
		Use:   "create USERNAME",
		Short: "Create a user (admin)",
		Long: `Create a user. The password is asked twice on a terminal, without echo, or
read from stdin (one line) with --password-stdin.`,
		Example: `  courier users create alice --email alice@example.com
  printf '%s\n' "$PW" | courier users create bob --email bob@example.com --password-stdin --admin`,
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
				Username: args[0], Email: email, Password: password, Admin: admin,
			})
			if err != nil {
				return fmt.Errorf("create user %q: %w", args[0], err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), u)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created user %s <%s>%s.\n", cell(u.Username), cell(u.Email),
				map[bool]string{true: " (admin)", false: ""}[u.Admin])
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the user's email (required)")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an administrator")
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
		Short:   "List users (admin)",
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
				t := newTable(w, "USERNAME", "EMAIL", "ADMIN", "ID", "CREATED")
				now := time.Now()
				for _, u := range users {
					t.row(u.Username, u.Email, fmt.Sprint(u.Admin), u.ID, ago(now, u.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}
