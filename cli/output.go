package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutputFlag adds -o/--output to cmd and returns where its value lands.
func addOutputFlag(cmd *cobra.Command) *string {
	out := new(string)
	cmd.Flags().StringVarP(out, "output", "o", outputTable, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return out
}

// checkOutput validates an -o value before any request is sent.
func checkOutput(format string) error {
	if format != outputTable && format != outputJSON {
		return fmt.Errorf("unknown output format %q: use table or json", format)
	}
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// row writes one row; each cell is cleaned so a value cannot break the
// layout or send terminal escapes.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// cell replaces control characters and tabs so text stays on its line.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// ago renders t relative to now, coarse like kubectl's AGE column.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// newClient builds a client from the stored config and the environment.
// needToken is false for commands that work before login.
func newClient(needToken bool) (*client.Client, error) {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errNoURL
	}
	if needToken && cfg.Token == "" {
		return nil, errNotLoggedIn
	}
	c, err := client.New(client.Config{URL: cfg.URL, Token: cfg.Token})
	if err != nil {
		return nil, fmt.Errorf("control plane %s: %w", cfg.URL, err)
	}
	return c, nil
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s (got %d argument(s)); see '%s --help'",
				cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// show is the shape every read command shares: check -o, call the API with
// an authenticated client, then print JSON for scripts or text for people.
// what names the action in errors ("list users").
func show[T any](cmd *cobra.Command, output, what string,
	fetch func(context.Context, *client.Client) (T, error),
	text func(io.Writer, *client.Client, T) error) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := newClient(true)
	if err != nil {
		return err
	}
	v, err := fetch(cmd.Context(), c)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if output == outputJSON {
		return writeJSON(cmd.OutOrStdout(), v)
	}
	return text(cmd.OutOrStdout(), c, v)
}
