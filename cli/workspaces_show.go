package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/courierhq/courier/client"
	"github.com/spf13/cobra"
)

func newWorkspacesShowCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "show WORKSPACE",
		Short: "Show a workspace's agent: state, connection and what its last apply did",
		Long: `Show what the control plane knows of a workspace's agent: its lifecycle state,
whether it is connected and since when, its version, and its last apply — one
row per secret with the outcome (written, unchanged, env, not_injected,
lost_collision, failed, file_disabled, disabled, not_in_scope), the files earlier applies
left behind (Courier never deletes files; remove them if no longer needed),
and the warnings; and the secrets its template asks for, each met, missing or
paused, with its description and link. Never a value. WORKSPACE is a name of
yours, OWNER/NAME, or an ID.`,
		Example: "  courier workspaces show dev\n  courier ws show alice/dev -o json",
		Args:    exactArgs(1, "the WORKSPACE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, *output, "workspace "+args[0], func(ctx context.Context, c *client.Client) (client.AgentStatus, error) {
				st, err := c.AgentStatus(ctx, args[0])
				if st.Warnings == nil {
					st.Warnings = []string{}
				}
				return st, err
			}, func(w io.Writer, _ *client.Client, st client.AgentStatus) error {
				return printAgentStatus(w, st, time.Now())
			})
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}

// when renders a time as "3m ago (2026-11-25T10:00:00Z)", or "-".
func when(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return ago(now, *t) + " ago (" + t.UTC().Format(time.RFC3339) + ")"
}

// outcomeDetail explains an outcome in a few words, never with a value.
func outcomeDetail(o client.Outcome) string {
	switch o.Outcome {
	case "lost_collision":
		return "lost to " + o.Winner
	case "failed":
		return o.Error
	case "disabled":
		return "paused: nothing applied; a file written before stays"
	case "file_disabled":
		return "file delivery is disabled on this deployment"
	case "not_in_scope":
		return "scoped to other workspaces: treated as deleted here; a file written before stays"
	case "not_injected":
		return "no env or file target"
	case "written":
		if o.InPlace != "" {
			return "written in place: " + o.InPlace
		}
	}
	return ""
}

func printAgentStatus(w io.Writer, st client.AgentStatus, now time.Time) error {
	head := newTable(w, "Workspace", st.OwnerName+"/"+st.Workspace+" ("+st.WorkspaceID+")")
	state := st.State
	if state == "" {
		state = "never reported"
	}
	head.row("State", state+", since "+when(now, &st.StateAt))
	conn := "not connected"
	switch {
	case st.Connected:
		conn = "connected since " + when(now, st.ConnectedSince)
	case st.DisconnectedAt != nil:
		conn = "disconnected " + when(now, st.DisconnectedAt)
	case st.ConnectedSince == nil:
		conn = "never connected"
	}
	head.row("Agent", conn)
	if st.AgentVersion != "" || st.RemoteAddr != "" {
		head.row("Version", st.AgentVersion+", from "+cell(st.RemoteAddr))
	}
	if st.ReplacedAt != nil {
		head.row("Replaced", when(now, st.ReplacedAt))
	}
	head.row("Agent token", tokenExpiry(now, st.AgentTokenExpiresAt))
	if st.LastApply == nil {
		head.row("Last apply", "none yet")
		if err := head.flush(); err != nil {
			return err
		}
		if err := printRequirements(w, st.SecretRequirements); err != nil {
			return err
		}
		return printList(w, "Warnings:", st.Warnings)
	}
	head.row("Last apply", when(now, &st.LastApply.At))
	switch {
	case st.ChangesPending && st.LastApply.LiveFiles:
		head.row("Secrets", "changes pending: live files on, the agent is applying them")
	case st.ChangesPending:
		head.row("Secrets", "changes pending: changed after the last apply; applied at the agent's next start or reconnect")
	case st.LastApply.LiveFiles:
		head.row("Secrets", "up to date; live files on: changes are applied as soon as they are made")
	}
	if err := head.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "SECRET", "OUTCOME", "ENV", "PATH", "DETAIL")
	for _, o := range st.LastApply.Outcomes {
		t.row(o.Secret, o.Outcome, o.EnvName, o.Path, outcomeDetail(o))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if err := printRequirements(w, st.SecretRequirements); err != nil {
		return err
	}
	if err := printList(w, "Left behind by earlier applies (Courier never deletes files; remove them if no longer needed):",
		st.LastApply.LeftBehind); err != nil {
		return err
	}
	return printList(w, "Warnings:", append(append([]string{}, st.Warnings...), st.LastApply.Warnings...))
}

// printList prints a titled list after a blank line, or nothing when empty.
func printList(w io.Writer, title string, items []string) error {
	if len(items) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\n" + title + "\n")
	for _, it := range items {
		b.WriteString("  " + cell(it) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tokenExpiry says when an agent token expires, or that it does not.
func tokenExpiry(now time.Time, at *time.Time) string {
	switch {
	case at == nil:
		return "never expires"
	case !now.Before(*at):
		return "expired " + ago(now, *at) + " ago (" + at.UTC().Format(time.RFC3339) + "); rotate it with courier workspaces rotate-token"
	}
	return "expires in " + ago(*at, now) + " (" + at.UTC().Format(time.RFC3339) + ")"
}

// printRequirements prints the table of the secrets the template asks for,
// after a blank line, or nothing when it asks for none.
func printRequirements(w io.Writer, reqs []client.SecretRequirementStatus) error {
	if len(reqs) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "REQUIRED SECRET", "STATUS", "REQUIRED", "DESCRIPTION", "DOCS")
	for _, r := range reqs {
		var what []string
		for _, x := range []string{r.Env, r.File} {
			if x != "" {
				what = append(what, x)
			}
		}
		t.row(strings.Join(what, ", "), r.Status, yesNo(r.Required), r.Description, r.DocsURL)
	}
	return t.flush()
}
