package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/client"
)

func newWorkspacesLogsCommand() *cobra.Command {
	var (
		output      *string
		script, app string
		follow      bool
	)
	cmd := &cobra.Command{
		Use:   "logs WORKSPACE",
		Short: "Show the output of a workspace's startup scripts and apps",
		Long: `Show what a workspace's startup scripts and apps printed (stdout and stderr),
and how each script's last run ended: its state, exit code and duration. The
agent replaces every value of the owner's secrets (6 bytes or more, and their
base64 forms) with *** before output leaves the workspace. The control plane
keeps the last 10,000 lines or 1 MiB per workspace.

With --follow, wait for new lines and print them as they come, until
interrupted. -o json prints the page as JSON, or with --follow one JSON line
per output line. WORKSPACE is a name of yours, OWNER/NAME, or an ID.`,
		Example: "  courier workspaces logs dev\n  courier ws logs dev --script install --follow\n  courier ws logs alice/dev --app web -o json",
		Args:    exactArgs(1, "the WORKSPACE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			q := client.LogsQuery{Script: script, App: app}
			return printLogs(cmd.Context(), cmd.OutOrStdout(), c, args[0], q, follow, *output == outputJSON)
		},
	}
	cmd.Flags().StringVar(&script, "script", "", "only this startup script's output")
	cmd.Flags().StringVar(&app, "app", "", "only this app's output")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	output = addOutputFlag(cmd)
	return cmd
}

// followWait is how long one long poll of --follow waits, under the
// client's request timeout.
const followWait = 25 * time.Second

// printLogs prints every retained line (and the runs, in text), then with
// follow keeps asking for more until ctx ends.
func printLogs(ctx context.Context, w io.Writer, c *client.Client, ws string, q client.LogsQuery, follow, asJSON bool) error {
	if q.Limit == 0 {
		q.Limit = 1000
	}
	first := true
	for {
		page, err := c.WorkspaceLogs(ctx, ws, q)
		if err != nil {
			if follow && ctx.Err() != nil {
				return nil // interrupted
			}
			return fmt.Errorf("workspace %s logs: %w", ws, err)
		}
		switch {
		case asJSON && !follow:
			return writeJSON(w, page)
		case asJSON:
			enc := json.NewEncoder(w)
			for _, l := range page.Lines {
				if err := enc.Encode(l); err != nil {
					return err
				}
			}
		default:
			if first {
				if err := printRuns(w, page.Runs); err != nil {
					return err
				}
			}
			for _, l := range page.Lines {
				if _, err := fmt.Fprintln(w, logLineText(l)); err != nil {
					return err
				}
			}
		}
		first = false
		q.Cursor = page.NextCursor
		full := len(page.Lines) >= q.Limit
		switch {
		case full:
			q.Wait = 0 // more is already there
		case !follow:
			return nil
		default:
			q.Wait = followWait
		}
		if err := ctx.Err(); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
}

// printRuns prints one row per script and app: how its last run went.
func printRuns(w io.Writer, runs []client.ScriptRun) error {
	if len(runs) == 0 {
		return nil
	}
	t := newTable(w, "KIND", "NAME", "STATE", "EXIT", "DURATION", "STARTED")
	for _, r := range runs {
		state, exit, dur, started := r.State, "-", "-", "-"
		if state == "" {
			state = "not run"
		}
		if r.ExitCode != nil {
			exit = fmt.Sprint(*r.ExitCode)
		}
		if r.StartedAt != nil {
			dur = (time.Duration(r.DurationMS) * time.Millisecond).String()
			started = r.StartedAt.UTC().Format(time.RFC3339)
		}
		t.row(r.Kind, r.Name, state, exit, dur, started)
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}

// logLineText is "[NAME] text", "[NAME stderr] text" for stderr, with
// control characters (terminal escapes) shown as "?": output is the
// program's and must not drive the reader's terminal.
func logLineText(l client.LogLine) string {
	tag := l.Name
	if l.Stream == "stderr" {
		tag += " stderr"
	}
	return "[" + tag + "] " + strings.Map(func(r rune) rune {
		if r != '\t' && unicode.IsControl(r) {
			return '?'
		}
		return r
	}, l.Text)
}
