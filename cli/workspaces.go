package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newWorkspacesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workspaces",
		Aliases: []string{"workspace", "ws"},
		Short:   "Manage workspaces",
		Example: "  courier workspaces create dev --owner alice --template template.yaml\n  courier workspaces list\n  courier workspaces show dev\n  courier workspaces rotate-token dev --token-file /etc/courier/agent-token\n  courier workspaces delete dev",
	}
	cmd.AddCommand(newWorkspacesCreateCommand(), newWorkspacesListCommand(), newWorkspacesShowCommand(),
		newWorkspacesDeleteCommand(), newWorkspacesRotateTokenCommand(), newWorkspacesLogsCommand())
	return cmd
}

func newWorkspacesCreateCommand() *cobra.Command {
	var (
		owner, templatePath string
		allowMissing        bool
		output              *string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a workspace for a user (admin)",
		Long: `Create a workspace owned by --owner from a template file (YAML, or JSON when
the name ends in .json) with env, scripts and apps:

  env:
    GREETING: hello
  scripts:
    - name: setup
      script: ./setup.sh
      timeout_seconds: 300
  apps:
    - slug: web
      command: python3 -m http.server 8080
  secrets:                      # the secrets the workspace needs
    - env: NPM_TOKEN            # or file: ~/.npmrc, or both
      description: Token for the private npm registry
      docs_url: https://wiki.example.com/npm-token
      required: true            # false: recommended, shown but not blocking
  on_missing_secrets: wait      # or start: run the scripts anyway

A workspace whose owner lacks a required secret (none of their enabled
secrets in scope for it delivers that env name or path) is refused, with the
list of what is missing, unless --allow-missing-secrets; its agent then waits
for them before running the startup scripts (on_missing_secrets: wait).
Unknown keys in the template are errors.

The agent token is printed once: store it where the workspace's courier-agent
reads it. The server keeps only its hash and cannot show it again.`,
		Example: `  courier workspaces create dev --owner alice --template template.yaml
  courier workspaces create ci --owner bob --template template.json -o json`,
		Args: exactArgs(1, "the workspace NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			tmpl, err := readTemplate(templatePath)
			if err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			w, err := c.CreateWorkspace(cmd.Context(), client.CreateWorkspaceRequest{
				Name: args[0], Owner: owner, Template: tmpl, AllowMissingSecrets: allowMissing,
			})
			if err != nil {
				var ce *client.Error
				if errors.As(err, &ce) && len(ce.MissingSecrets) > 0 {
					return fmt.Errorf("create workspace %q: %w\nCreate the missing secrets as %s (courier secret create), or pass --allow-missing-secrets", args[0], err, cell(owner))
				}
				return fmt.Errorf("create workspace %q: %w", args[0], err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), w)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created workspace %s/%s (%s).\n", cell(w.OwnerName), cell(w.Name), w.ID)
			fmt.Fprintf(out, "Agent token (shown once): %s\n", w.AgentToken)
			for _, r := range w.SecretRequirements {
				if r.Status != client.RequirementMet {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: secret %s\n", cell(r.Describe()))
				}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Store the token now where the workspace's courier-agent reads it; the server cannot show it again.")
			return nil
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "username or ID of the owner (required)")
	cmd.Flags().StringVar(&templatePath, "template", "", "template file, YAML or JSON (required)")
	cmd.Flags().BoolVar(&allowMissing, "allow-missing-secrets", false,
		"create the workspace even when its owner lacks secrets the template requires")
	_ = cmd.MarkFlagRequired("owner")
	_ = cmd.MarkFlagRequired("template")
	_ = cmd.MarkFlagFilename("template", "yaml", "yml", "json")
	output = addOutputFlag(cmd)
	return cmd
}

// maxTemplateBytes bounds a template file.
const maxTemplateBytes = 1 << 20

// readTemplate reads a template file: JSON for *.json, YAML otherwise.
// Unknown fields are errors, so a typo does not silently drop a script.
func readTemplate(path string) (client.Template, error) {
	var t client.Template
	f, err := os.Open(path)
	if err != nil {
		return t, fmt.Errorf("template: %w", err)
	}
	defer f.Close()
	data, err := readAllLimited(io.LimitReader(f, maxTemplateBytes+1), path)
	if err != nil {
		return t, fmt.Errorf("template %s: %w", path, err)
	}
	if len(data) > maxTemplateBytes {
		return t, fmt.Errorf("template %s is larger than %d bytes", path, maxTemplateBytes)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(strings.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&t)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader([]byte(data)))
		dec.KnownFields(true)
		err = dec.Decode(&t)
	}
	if err != nil {
		return t, fmt.Errorf("template %s: %w", path, err)
	}
	return t, nil
}

func newWorkspacesListCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the workspaces you can see (all of them for an admin)",
		Example: "  courier workspaces list\n  courier ws ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, *output, "list workspaces", func(ctx context.Context, c *client.Client) ([]client.Workspace, error) {
				wss, err := c.Workspaces(ctx)
				if wss == nil {
					wss = []client.Workspace{}
				}
				return wss, err
			}, func(w io.Writer, _ *client.Client, wss []client.Workspace) error {
				t := newTable(w, "NAME", "OWNER", "STATE", "SINCE", "ID")
				now := time.Now()
				for _, ws := range wss {
					t.row(ws.Name, ws.OwnerName, ws.State, ago(now, ws.StateAt), ws.ID)
				}
				return t.flush()
			})
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}
