// Package cli holds the commands of the courier binary: the server, the
// secret and admin commands, ssh, and dev. cmd/courier only calls Execute.
package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// NewRootCommand returns the courier command with every subcommand attached.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "courier",
		Short:         "Courier delivers your secrets into every workspace you own",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands() {
		root.AddCommand(sub())
	}
	return root
}

// subcommands lists the constructors of the top-level commands; each lives in
// its own file of this package.
func subcommands() []func() *cobra.Command {
	return []func() *cobra.Command{
		newLoginCommand, newLogoutCommand, newWhoamiCommand,
		newSecretCommand, newUsersCommand, newWorkspacesCommand,
		newSSHCommand, newPortForwardCommand, newConfigSSHCommand, newVersionCommand, newCompletionCommand,
		newServerCommand, newDevCommand,
	}
}

// Execute runs the root command with ctx (cancelled on SIGINT/SIGTERM by main).
func Execute(ctx context.Context, args []string) error {
	root := NewRootCommand()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
