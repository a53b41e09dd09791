package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

func newLoginCommand() *cobra.Command {
	var (
		username      string
		passwordStdin bool
		token         string
		sso, device   bool
	)
	cmd := &cobra.Command{
		Use:   "login [URL]",
		Short: "Log in to a Courier control plane and store the session",
		Long: `Log in to a Courier control plane. On a terminal you are asked for your
username (or email) and password; in scripts pass --username and the password
on stdin with --password-stdin, or store an existing session token with --token
(or COURIER_SESSION_TOKEN).

When the server signs people in with single sign-on (OpenID Connect) and
not with passwords, or with --sso, login opens your browser at the server's
sign-in page and waits on a loopback address (127.0.0.1) for the browser to
come back; if no browser can be opened it prints the URL to open. On a
machine without a browser use --device: it prints a URL and a code to
enter on any other device, and waits until you have approved.

The URL and token are stored in config.json under the user config directory
(COURIER_CONFIG_DIR overrides it), readable by you only. COURIER_URL and
COURIER_SESSION_TOKEN override the stored values for every command.`,
		Example: `  courier login https://courier.example.com
  printf '%s\n' "$PASSWORD" | courier login https://courier.example.com --username alice --password-stdin
  printf '%s\n' "$COURIER_TOKEN" | courier login https://courier.example.com --token -
  courier login https://courier.example.com --sso
  courier login https://courier.example.com --device`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(os.Getenv)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				cfg.URL = strings.TrimRight(args[0], "/")
			}
			if cfg.URL == "" {
				return errors.New("login needs the control plane URL: courier login https://courier.example.com")
			}
			c, err := client.New(client.Config{URL: cfg.URL})
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("token") {
				token = os.Getenv(envToken)
			} else if token == "-" {
				if token, err = readPasswordStdin(cmd); err != nil {
					return fmt.Errorf("--token -: %w", err)
				}
			}
			if token == "" {
				token, err = loginToken(cmd, c, username, passwordStdin, sso || device, device)
				if err != nil {
					return err
				}
			}
			if c, err = client.New(client.Config{URL: cfg.URL, Token: token}); err != nil {
				return err
			}
			me, err := c.User(cmd.Context(), client.Me)
			if err != nil {
				return fmt.Errorf("check session: %w", err)
			}
			cfg.Token = token
			path, err := saveConfig(os.Getenv, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s.\n", cfg.URL, cell(me.Username))
			fmt.Fprintf(cmd.ErrOrStderr(), "Session stored in %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "username or email (prompted on a terminal if omitted)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (one line)")
	cmd.Flags().StringVar(&token, "token", "", "store this existing session token instead of logging in (\"-\" reads it from stdin, which keeps it out of process lists)")
	cmd.MarkFlagsMutuallyExclusive("token", "password-stdin")
	cmd.MarkFlagsMutuallyExclusive("token", "username")
	cmd.Flags().BoolVar(&sso, "sso", false, "sign in with single sign-on in your browser")
	cmd.Flags().BoolVar(&device, "device", false, "sign in with single sign-on on another device (for machines without a browser)")
	for _, f := range []string{"token", "username", "password-stdin"} {
		cmd.MarkFlagsMutuallyExclusive("sso", f)
		cmd.MarkFlagsMutuallyExclusive("device", f)
	}
	return cmd
}

// loginToken signs in with single sign-on or a password and returns the
// session token.
func loginToken(cmd *cobra.Command, c *client.Client, username string, passwordStdin, askedSSO, device bool) (string, error) {
	if username == "" && !passwordStdin {
		viaSSO, err := useSSO(cmd.Context(), c, askedSSO)
		if err != nil {
			return "", err
		}
		if viaSSO && device {
			return deviceLogin(cmd.Context(), c, cmd.ErrOrStderr())
		}
		if viaSSO {
			return browserLogin(cmd.Context(), c, cmd.ErrOrStderr())
		}
	}
	return passwordLogin(cmd, c, username, passwordStdin)
}

// passwordLogin asks for the missing credentials and logs in.
func passwordLogin(cmd *cobra.Command, c *client.Client, username string, passwordStdin bool) (string, error) {
	var err error
	if username == "" {
		if username, err = promptLine(cmd, "Username or email: "); err != nil {
			return "", fmt.Errorf("%w (pass --username)", err)
		}
	}
	username = strings.TrimSpace(username)
	if username == "" {
		return "", errors.New("a username or email is required")
	}
	var password string
	if passwordStdin {
		password, err = readPasswordStdin(cmd)
	} else {
		password, err = promptSecret(cmd, "Password: ")
		if errors.Is(err, errNoTerminal) {
			err = fmt.Errorf("%w (pass --password-stdin)", err)
		}
	}
	if err != nil {
		return "", err
	}
	req := client.LoginRequest{Username: username, Password: password}
	if strings.Contains(username, "@") {
		req = client.LoginRequest{Email: username, Password: password}
	}
	token, err := c.Login(cmd.Context(), req)
	if err != nil {
		return "", fmt.Errorf("log in: %w", err)
	}
	return token, nil
}

func newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored session and forget it",
		Long: `Revoke the stored session token on the control plane and remove it from the
local config. The URL is kept, so 'courier login' needs no argument next time.`,
		Example: `  courier logout`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(os.Getenv)
			if err != nil {
				return err
			}
			if cfg.Token == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "Not logged in.")
				return nil
			}
			var revokeErr error
			if cfg.URL != "" {
				c, err := client.New(client.Config{URL: cfg.URL, Token: cfg.Token})
				if err == nil {
					revokeErr = c.Logout(cmd.Context())
				}
				// An unknown token is already as revoked as it gets.
				if errors.Is(revokeErr, client.ErrUnauthorized) {
					revokeErr = nil
				}
			}
			stored, err := loadStoredConfig(os.Getenv)
			if err != nil {
				return err
			}
			if stored.Token != "" {
				stored.Token = ""
				if _, err := saveConfig(os.Getenv, stored); err != nil {
					return err
				}
			}
			if revokeErr != nil {
				return fmt.Errorf("removed the local token, but the server did not revoke it: %w", revokeErr)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", cfg.URL)
			return nil
		},
	}
}

func newWhoamiCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:     "whoami",
		Short:   "Show the user the stored session belongs to",
		Example: "  courier whoami\n  courier whoami -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, *output, "whoami", func(ctx context.Context, c *client.Client) (client.User, error) {
				return c.User(ctx, client.Me)
			}, func(w io.Writer, c *client.Client, me client.User) error {
				role := ""
				if me.Admin {
					role = " (admin)"
				}
				_, err := fmt.Fprintf(w, "%s <%s>%s on %s\n", cell(me.Username), cell(me.Email), role, c.URL())
				return err
			})
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}
