package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/courierhq/courier/inject"
	"github.com/spf13/cobra"
)

func newSecretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "secret",
		Aliases: []string{"secrets"},
		Short:   "Manage the secrets Courier injects into your workspaces",
		Long: `Manage your user secrets. Each secret has a name, a value and an optional
description, and may be injected into every workspace you own as an
environment variable (--env), as a file (--file), or both. A secret with
neither target is stored but not injected.

Running workspaces pick up changes the next time their agent starts or
reconnects. Values are never shown after create or update.`,
		Example: `  echo -n "$API_KEY" | courier secret create api-key --env API_KEY
  courier secret list
  courier secret update api-key --env ""
  courier secret update api-key --enabled=false
  courier secret delete api-key --yes`,
	}
	cmd.AddCommand(newSecretCreateCommand(), newSecretUpdateCommand(), newSecretListCommand(),
		newSecretDeleteCommand(), newSecretImportCommand())
	return cmd
}

// secretFlags are the metadata flags shared by create and update.
type secretFlags struct {
	value, valueFile, description, env, file string
	enabled                                  bool
	workspaces                               []string
}

func (f *secretFlags) add(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&f.value, "value", "", "the secret value (prefer stdin: --value shows in shell history and process lists)")
	cmd.Flags().StringVar(&f.valueFile, "value-file", "", "read the value from this file, byte for byte (binary is fine for file secrets); - reads stdin")
	cmd.MarkFlagsMutuallyExclusive("value", "value-file")
	cmd.Flags().StringVar(&f.description, "description", "", "a description of the secret")
	cmd.Flags().StringVar(&f.env, "env", "", "inject as this environment variable"+verb)
	cmd.Flags().StringVar(&f.file, "file", "", "write to this path in the workspace (~/... or /...)"+verb)
	cmd.Flags().BoolVar(&f.enabled, "enabled", true, "deliver the secret to workspaces; --enabled=false pauses it (it stays listed, its targets stay reserved)")
	cmd.Flags().StringArrayVar(&f.workspaces, "workspace", nil,
		"deliver only to this workspace (a name or a glob such as 'web-*'; repeat for more); --workspace \"\" means all workspaces (the default)")
}

// scopeFlag returns the scope --workspace asks for: nil when the flag is
// absent, an empty list for --workspace "" (all workspaces), else the names
// and globs, checked with the server's rules.
func (f *secretFlags) scopeFlag(cmd *cobra.Command) (*[]string, error) {
	if !cmd.Flags().Changed("workspace") {
		return nil, nil
	}
	var scope []string
	all := false
	for _, w := range f.workspaces {
		if w == "" {
			all = true
			continue
		}
		scope = append(scope, w)
	}
	if all && len(scope) > 0 {
		return nil, errors.New(`--workspace "" means all workspaces and cannot be combined with workspace names`)
	}
	if err := inject.ValidateScope(scope); err != nil {
		return nil, fmt.Errorf("invalid --workspace: %w", err)
	}
	if scope == nil {
		scope = []string{}
	}
	return &scope, nil
}

// enabledFlag returns --enabled when it was given, else nil.
func (f *secretFlags) enabledFlag(cmd *cobra.Command) *bool {
	if !cmd.Flags().Changed("enabled") {
		return nil
	}
	v := f.enabled
	return &v
}

// warnTrailingNewline tells the user a value ends in a newline, which is
// stored as is (R10). It is one line on stderr and never shows the value.
// warnExpandedHome warns when a file target starts with this machine's
// home directory: the shell most likely expanded an unquoted "~/", so the
// workspace gets an absolute path that may not exist there.
func warnExpandedHome(w io.Writer, file string) {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" || !strings.HasPrefix(file, home+"/") {
		return
	}
	fmt.Fprintf(w, "warning: the file path %s starts with your local home directory; if you meant the workspace home, quote it: --file '~/%s'\n",
		file, strings.TrimPrefix(file, home+"/"))
}

func warnTrailingNewline(w io.Writer, value string) {
	if client.IsBinary(value) {
		fmt.Fprintln(w, "note: the value is binary (not UTF-8 text, or it holds a NUL byte); it is sent base64-encoded "+
			"and stored byte for byte, and it can be delivered as a file only, not as an env variable")
		return
	}
	if strings.HasSuffix(value, "\n") {
		fmt.Fprintln(w, "warning: the value ends with a newline, which is stored as part of it; use 'echo -n' (or printf without a newline) to leave it out")
	}
}

func newSecretCreateCommand() *cobra.Command {
	var (
		f      secretFlags
		output *string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a secret",
		Long: `Create a secret. The value is read from stdin when stdin is a pipe or a file,
byte for byte: a trailing newline is kept (a warning says so). On a terminal
without --value you are prompted and nothing is echoed. --value works too, but
it leaves the value in shell history and process lists; stdin is the way for
sensitive values. Giving both stdin data and --value is an error; in scripts
that pass --value, run with stdin from /dev/null or a closed pipe.
--value-file reads the value from a file, byte for byte.

A value that is not UTF-8 text or holds a NUL byte (a keytab, a DER
certificate, a PKCS#12 bundle) is sent base64-encoded (value_base64) and
stored byte for byte; such a secret can have a file target only.`,
		Example: `  echo -n "$API_KEY" | courier secret create api-key --description "API key" --env API_KEY
  courier secret create tool-config --file '~/.config/tool/config.json' < ./tool-config.json
  echo -n "$TOKEN" | courier secret create service-token --env SERVICE_TOKEN --file '~/.config/service/token'
  echo -n "$PROD_TOKEN" | courier secret create prod-token --env TOKEN --workspace api --workspace 'web-*'
  courier secret create krb5-keytab --value-file ./krb5.keytab --file '~/.krb5.keytab'
  courier secret create api-key   # prompts for the value`,
		Args: exactArgs(1, "the secret NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			name := args[0]
			if err := checkSecretFields(name, f.env, f.file); err != nil {
				return err
			}
			scope, err := f.scopeFlag(cmd)
			if err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			flagValue, flagSet := f.value, cmd.Flags().Changed("value")
			if cmd.Flags().Changed("value-file") {
				if flagValue, err = readValueFile(cmd.InOrStdin(), f.valueFile); err != nil {
					return err
				}
				flagSet = true
			}
			value, err := createValue(cmd, flagValue, flagSet)
			if err != nil {
				return err
			}
			warnTrailingNewline(cmd.ErrOrStderr(), value)
			warnExpandedHome(cmd.ErrOrStderr(), f.file)
			s, err := c.CreateSecret(cmd.Context(), client.Me, client.CreateSecretRequest{
				Name: name, Value: value, Description: f.description, EnvName: f.env, FilePath: f.file,
				Enabled: f.enabledFlag(cmd), Workspaces: *valueOrScope(scope),
			})
			if err != nil {
				return fmt.Errorf("create secret %q: %w", name, err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created secret %q%s.\n", s.Name, targets(s))
			return nil
		},
	}
	f.add(cmd, "")
	output = addOutputFlag(cmd)
	return cmd
}

// createValue decides where create's value comes from: --value, stdin data,
// or a no-echo prompt on a terminal.
func createValue(cmd *cobra.Command, flagValue string, flagSet bool) (string, error) {
	in := cmd.InOrStdin()
	kind := classifyStdin(in)
	var (
		value string
		err   error
	)
	switch {
	case flagSet:
		if kind == stdinData {
			data, err := readAllStdin(in)
			if err != nil {
				return "", err
			}
			if data != "" {
				return "", errors.New("the value was given twice, on stdin and with --value: use one")
			}
		}
		value = flagValue
	case kind == stdinData:
		if value, err = readAllStdin(in); err != nil {
			return "", err
		}
		if value == "" {
			return "", errors.New("stdin is empty: pipe the value in (echo -n \"$VALUE\" | courier secret create NAME) or use --value")
		}
	case kind == stdinTerminal:
		if value, err = promptSecret(cmd, "Value (input hidden): "); err != nil {
			return "", err
		}
	default:
		return "", errors.New("no value: pipe it on stdin or use --value")
	}
	if value == "" {
		return "", errors.New("the value is empty")
	}
	return value, nil
}

// checkSecretFields checks what the CLI can check before asking for a value,
// with the same rules as the server, so nobody types a value in vain.
func checkSecretFields(name, env, file string) error {
	var es inject.Errors
	for _, err := range []error{inject.ValidateName(name), inject.ValidateEnvName(env), inject.ValidateFilePath(file)} {
		var fe *inject.FieldError
		if errors.As(err, &fe) {
			es = append(es, fe)
		}
	}
	if len(es) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("invalid secret")
	for _, e := range es {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Field, e.Message)
	}
	return errors.New(b.String())
}

func newSecretUpdateCommand() *cobra.Command {
	var (
		f      secretFlags
		output *string
	)
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a secret's value, description or targets, or pause it",
		Long: `Change a secret. Give at least one of --value, --value-file, --description,
--env, --file, --enabled or --workspace, or pipe a new value on stdin. A binary value is
sent as value_base64, as with create. --env "" and --file "" clear that
target. --enabled=false pauses the secret: it stays listed and keeps its
targets, but agents stop applying it at their next start (no env; a file
written before stays, Courier never deletes files); --enabled resumes it.
--workspace replaces the workspaces the secret goes to (repeat it for more;
--workspace "" means all again); a workspace it leaves treats it like a
deleted secret at its agent's next apply.

Stdin is read only when none of those flags is given and stdin is a pipe or
a file; it is then the new value, verbatim (a trailing newline is kept, with a
warning). With any flag, stdin is left alone, so a script that changes only a
target never waits on its input; to change the value and a target together,
use --value-file - (stdin, explicitly) or --value. A value already waiting on
stdin next to a flag is refused rather than silently dropped.`,
		Example: `  echo -n "$NEW_API_KEY" | courier secret update api-key
  courier secret update api-key --env NEW_API_KEY
  echo -n "$NEW_API_KEY" | courier secret update api-key --value-file - --description "rotated"
  courier secret update api-key --file ""
  courier secret update api-key --description "rotated $(date +%F)"
  courier secret update api-key --enabled=false
  courier secret update prod-token --workspace api
  courier secret update prod-token --workspace ""   # all workspaces again`,
		Args: exactArgs(1, "the secret NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			name := args[0]
			var req client.UpdateSecretRequest
			fl := cmd.Flags()
			if fl.Changed("value") {
				req.Value = &f.value
			}
			if fl.Changed("value-file") {
				v, err := readValueFile(cmd.InOrStdin(), f.valueFile)
				if err != nil {
					return err
				}
				req.Value = &v
			}
			if fl.Changed("description") {
				req.Description = &f.description
			}
			if fl.Changed("env") {
				req.EnvName = &f.env
			}
			if fl.Changed("file") {
				req.FilePath = &f.file
				warnExpandedHome(cmd.ErrOrStderr(), f.file)
			}
			req.Enabled = f.enabledFlag(cmd)
			if err := checkSecretFields(name, f.env, f.file); err != nil {
				return err
			}
			scope, err := f.scopeFlag(cmd)
			if err != nil {
				return err
			}
			req.Workspaces = scope
			if req.Value != nil && *req.Value == "" {
				return errors.New("the new value is empty: a secret needs a value")
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			if req.Empty() {
				v, err := updateValueFromStdin(cmd)
				if err != nil {
					return err
				}
				req.Value = &v
			} else if req.Value == nil && stdinPending(cmd.InOrStdin()) {
				// `echo -n NEW | courier secret update k --description x`
				// would otherwise report success with the old value still
				// in every workspace.
				return errors.New("a value is waiting on stdin, but with flags stdin is not read: to change the value as well, " +
					"pass it with --value-file - (reads stdin) or --value, or run the update twice; nothing was changed")
			}
			warnTrailingNewline(cmd.ErrOrStderr(), *valueOr(req.Value))
			s, err := c.UpdateSecret(cmd.Context(), client.Me, name, req)
			if err != nil {
				return fmt.Errorf("update secret %q: %w", name, err)
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Updated secret %q (%s)%s.\n", s.Name, changed(req), targets(s))
			return nil
		},
	}
	f.add(cmd, "; \"\" clears it")
	output = addOutputFlag(cmd)
	return cmd
}

// readValueFile reads --value-file verbatim (up to the stdin limit).
func readValueFile(stdin io.Reader, path string) (string, error) {
	if path == "-" {
		return readAllStdin(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--value-file: %w", err)
	}
	defer f.Close()
	return readAllLimited(f, path)
}

// updateValueFromStdin reads update's value when no flag was given.
func updateValueFromStdin(cmd *cobra.Command) (string, error) {
	const none = "nothing to update: give --value, --description, --env, --file, --enabled or --workspace, or pipe a new value on stdin"
	if classifyStdin(cmd.InOrStdin()) != stdinData {
		return "", errors.New(none)
	}
	v, err := readAllStdin(cmd.InOrStdin())
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", errors.New(none + " (stdin was empty)")
	}
	return v, nil
}

func valueOrScope(p *[]string) *[]string {
	if p == nil {
		return new([]string)
	}
	return p
}

func valueOr(p *string) *string {
	if p == nil {
		return new(string)
	}
	return p
}

// changed names the fields an update touches, never their values.
func changed(r client.UpdateSecretRequest) string {
	var parts []string
	if r.Value != nil {
		parts = append(parts, "value")
	}
	if r.Description != nil {
		parts = append(parts, "description")
	}
	if r.EnvName != nil {
		parts = append(parts, map[bool]string{true: "env target cleared", false: "env target"}[*r.EnvName == ""])
	}
	if r.FilePath != nil {
		parts = append(parts, map[bool]string{true: "file target cleared", false: "file target"}[*r.FilePath == ""])
	}
	if r.Enabled != nil {
		parts = append(parts, map[bool]string{true: "enabled", false: "paused"}[*r.Enabled])
	}
	if r.Workspaces != nil {
		parts = append(parts, "workspaces")
	}
	return strings.Join(parts, ", ")
}

// targets describes where a secret is injected.
func targets(s client.Secret) string {
	var parts []string
	if s.EnvName != "" {
		parts = append(parts, "env "+cell(s.EnvName))
	}
	if s.FilePath != "" {
		parts = append(parts, "file "+cell(s.FilePath))
	}
	paused := ""
	if len(s.Workspaces) > 0 {
		paused = "; only in workspaces " + cell(strings.Join(s.Workspaces, ", "))
	}
	if !s.Enabled {
		paused += "; paused: not delivered until enabled again"
	}
	if len(parts) == 0 {
		return "; not injected (no --env or --file)" + paused
	}
	return "; injected as " + strings.Join(parts, " and ") + paused
}

func newSecretListCommand() *cobra.Command {
	var (
		output    *string
		user      string
		workspace string
	)
	cmd := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls", "show"},
		Short:   "List your secrets, or show one (metadata only, never values)",
		Long: `List your secrets, or show one: metadata only, never values. Admins and
auditors list another user's with --user NAME. --workspace NAME lists only the
secrets in scope for that workspace (those its agent gets).`,
		Example: `  courier secret list
  courier secret list --workspace dev
  courier secret list api-key
  courier secret ls -o json
  courier secret list --user alice`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			var secrets []client.Secret
			if len(args) == 1 {
				s, err := c.Secret(cmd.Context(), user, args[0])
				if err != nil {
					return fmt.Errorf("secret %q: %w", args[0], err)
				}
				if *output == outputJSON {
					return writeJSON(cmd.OutOrStdout(), s)
				}
				secrets = []client.Secret{s}
			} else {
				if cmd.Flags().Changed("workspace") {
					secrets, err = c.SecretsInWorkspace(cmd.Context(), user, workspace)
				} else {
					secrets, err = c.Secrets(cmd.Context(), user)
				}
				if err != nil {
					return fmt.Errorf("list secrets: %w", err)
				}
				if secrets == nil {
					secrets = []client.Secret{}
				}
				if *output == outputJSON {
					return writeJSON(cmd.OutOrStdout(), secrets)
				}
				if len(secrets) == 0 && user != client.Me {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s has no secrets.\n", cell(user))
					return nil
				}
				if len(secrets) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "No secrets. Create one with: echo -n \"$VALUE\" | courier secret create NAME --env NAME")
					return nil
				}
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "ENV", "FILE", "WORKSPACES", "ENABLED", "DESCRIPTION", "UPDATED")
			now := time.Now()
			for _, s := range secrets {
				t.row(s.Name, s.EnvName, s.FilePath, scopeCell(s.Workspaces), yesNo(s.Enabled), s.Description, ago(now, s.UpdatedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&user, "user", client.Me, "list this user's secrets (admins and auditors)")
	cmd.Flags().StringVar(&workspace, "workspace", "", "list only the secrets in scope for the workspace with this name")
	output = addOutputFlag(cmd)
	return cmd
}

func newSecretDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a secret",
		Long: `Delete a secret. On a terminal you are asked to confirm; --yes skips the
question. Without a terminal, --yes is required, so a script never deletes by
accident. Files the secret wrote into workspaces stay on disk; the env
variable stops being set at the next agent start.`,
		Example: `  courier secret delete api-key
  courier secret delete api-key --yes`,
		Args: exactArgs(1, "the secret NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := newClient(true)
			if err != nil {
				return err
			}
			if ok, err := confirmDelete(cmd, yes, "secret", name, fmt.Sprintf("Delete secret %q?", name)); !ok || err != nil {
				return err
			}
			if err := c.DeleteSecret(cmd.Context(), client.Me, name); err != nil {
				return fmt.Errorf("delete secret %q: %w", name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted secret %q.\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// scopeCell renders a secret's workspaces for a table: "all" or the list.
func scopeCell(scope []string) string {
	if len(scope) == 0 {
		return "all"
	}
	return strings.Join(scope, ",")
}
