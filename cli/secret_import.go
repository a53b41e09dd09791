package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

func newSecretImportCommand() *cobra.Command {
	var (
		format string
		output *string
	)
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Create many secrets at once from a .env, JSON or YAML file",
		Long: `Create every secret described in FILE (or stdin with "-") in one request:
either all of them are created, or, if any is invalid, clashes with an
existing secret or breaks a limit, none is.

The format comes from the file name (*.env or .env*, *.json, *.yaml or
*.yml) or from --format, which stdin needs. The file is sent to the server
as is; the server parses it, so the accepted shapes are those of the batch
endpoint (POST /api/v2/users/{user}/secrets/batch).

The file must be UTF-8 text. A binary value (a keytab, a DER certificate)
goes in a json or yaml entry as value_base64, the base64 of its bytes, in
place of value; such a secret can have a file target only.`,
		Example: `  courier secret import .env
  courier secret import secrets.yaml
  cat secrets.json | courier secret import - --format json`,
		Args: exactArgs(1, "one FILE, or - for stdin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			src := args[0]
			if format == "" {
				format = formatFromName(src)
			}
			switch format {
			case client.FormatEnv, client.FormatJSON, client.FormatYAML:
			case "":
				return fmt.Errorf("cannot tell the format of %q from its name: pass --format env, json or yaml", src)
			default:
				return fmt.Errorf("unknown format %q: use env, json or yaml", format)
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			content, err := readImport(cmd, src)
			if err != nil {
				return err
			}
			if !utf8.ValidString(content) {
				return fmt.Errorf("import %s: the file is not UTF-8 text, and sending it would alter it; "+
					"give binary values in a json or yaml file as value_base64 (base64 of the bytes) instead of value", src)
			}
			created, err := c.BatchCreateSecrets(cmd.Context(), client.Me, client.BatchSecretsRequest{Format: format, Content: content})
			if err != nil {
				return fmt.Errorf("import %s (nothing was created): %w", src, err)
			}
			if created == nil {
				created = []client.Secret{}
			}
			if *output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), created)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Imported %d secret(s).\n", len(created))
			t := newTable(cmd.OutOrStdout(), "NAME", "ENV", "FILE", "DESCRIPTION", "UPDATED")
			now := time.Now()
			for _, s := range created {
				t.row(s.Name, s.EnvName, s.FilePath, s.Description, ago(now, s.UpdatedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "env, json or yaml (default: from the file name)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(
		[]string{client.FormatEnv, client.FormatJSON, client.FormatYAML}, cobra.ShellCompDirectiveNoFileComp))
	output = addOutputFlag(cmd)
	return cmd
}

// formatFromName guesses the import format from a file name; "" if unknown.
func formatFromName(name string) string {
	base := strings.ToLower(filepath.Base(name))
	switch {
	case name == "-":
		return ""
	case strings.HasSuffix(base, ".json"):
		return client.FormatJSON
	case strings.HasSuffix(base, ".yaml"), strings.HasSuffix(base, ".yml"):
		return client.FormatYAML
	case base == ".env", strings.HasSuffix(base, ".env"), strings.HasPrefix(base, ".env."):
		return client.FormatEnv
	}
	return ""
}

// readImport reads the import source verbatim.
func readImport(cmd *cobra.Command, src string) (string, error) {
	if src == "-" {
		if classifyStdin(cmd.InOrStdin()) == stdinTerminal {
			return "", fmt.Errorf("import -: stdin is a terminal; pipe the file in or name it")
		}
		return readAllStdin(cmd.InOrStdin())
	}
	f, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	return readAllLimited(f, src)
}
