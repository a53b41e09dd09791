// Package cli holds the commands of the courier binary: the server, the
// secret and admin commands, ssh, and dev. cmd/courier only calls Execute.
package cli

import (
	"context"
	"fmt"
	"strings"

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
	for _, c := range root.Commands() {
		refuseUnknownSubcommands(c)
	}
	return root
}

// refuseUnknownSubcommands makes c, and every command group under it, fail
// on an argument that names no subcommand, with the nearest names as
// suggestions: cobra would print the group's help and exit 0, and a
// script would believe `courier workspaces frobnicate` worked. A bare
// group still prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra sets it on the root only
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("%s\nRun '%s --help' for its commands", msg, cmd.CommandPath())
	}
}

// subcommands lists the constructors of the top-level commands; each lives in
// its own file of this package.
func subcommands() []func() *cobra.Command {
	return []func() *cobra.Command{
		newLoginCommand, newLogoutCommand, newWhoamiCommand,
		newSecretCommand, newUsersCommand, newWorkspacesCommand, newTokensCommand, newAuditCommand,
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
