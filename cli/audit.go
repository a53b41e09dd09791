package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/client"
)

// auditFollowEvery is how often `courier audit list --follow` asks for new
// records.
const auditFollowEvery = 2 * time.Second

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the audit log (who did what, from where)",
		Long: `Read and verify the control plane's audit log: every sign-in, change to a
secret, user, workspace or token, agent connection and SSH session, with
who did it, from which address, and how it ended. Records never hold a
secret value, a token or a password.

Admins and auditors read everyone's records; everyone else reads the
records about themselves (--mine is then implied).`,
		Example: `  courier audit list --action 'secret.*' --target deploy-key
  courier audit list --actor alice --since 24h -o json
  courier audit list --follow
  courier audit verify`,
	}
	cmd.AddCommand(newAuditListCommand(), newAuditVerifyCommand())
	return cmd
}

// parseSince reads a time as RFC 3339 or as a duration before now ("24h",
// "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == d {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2026-12-04T10:00:00Z) nor a span back from now (24h, 7d)", s)
}

func newAuditListCommand() *cobra.Command {
	var (
		q            client.AuditQuery
		since, until string
		mine, follow bool
		output       *string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List audit records, newest first (or follow new ones)",
		Long: `List audit records, newest first. Filters: --actor (a user's name or ID,
or a workspace's for its agent), --action (exact, or a prefix ending in *:
'secret.*'), --target (a secret's, user's, workspace's or token's name or
ID), --outcome (success, failure, denied), --since and --until (a time, or
a span back from now such as 24h or 7d). --limit bounds the records shown
(default 100). --follow prints the matching records as they are written,
oldest first, until interrupted. --mine reads only the records about you
(what you did, and what was done to you and your things).`,
		Example: `  courier audit list --action secret.update --target deploy-key
  courier audit list --action 'ssh.*' --target api --since 12h
  courier audit list --actor alice --outcome denied -o json
  courier audit list --follow --action 'session.*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			now := time.Now()
			var err error
			if q.Since, err = parseSince(since, now); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if q.Until, err = parseSince(until, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if q.Limit < 1 || q.Limit > 1000 {
				return errors.New("--limit must be between 1 and 1000")
			}
			c, err := newClient(true)
			if err != nil {
				return err
			}
			fetch := func(q client.AuditQuery) (client.AuditPage, error) {
				if mine {
					return c.UserAudit(cmd.Context(), client.Me, q)
				}
				return c.Audit(cmd.Context(), q)
			}
			recs, after, err := firstAuditPage(fetch, q, follow)
			if err != nil {
				return fmt.Errorf("list audit records: %w", err)
			}
			out := cmd.OutOrStdout()
			if err := printAudit(out, *output, recs, !follow); err != nil {
				return err
			}
			if !follow {
				if len(recs) == 0 && *output != outputJSON {
					fmt.Fprintln(cmd.ErrOrStderr(), "No audit records match.")
				}
				return nil
			}
			return followAudit(cmd, fetch, q, after, *output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Actor, "actor", "", "who acted: a user's name or ID (a workspace's for its agent)")
	f.StringVar(&q.Action, "action", "", "what was done: secret.update, or a prefix such as 'secret.*'")
	f.StringVar(&q.Target, "target", "", "what it was done to: a name or ID")
	f.StringVar(&q.Outcome, "outcome", "", "success, failure or denied")
	f.StringVar(&since, "since", "", "records from this time on (2026-12-04T10:00:00Z, or 24h, 7d back)")
	f.StringVar(&until, "until", "", "records before this time")
	f.IntVar(&q.Limit, "limit", 100, "at most this many records (1-1000)")
	f.BoolVar(&follow, "follow", false, "keep printing new records as they are written")
	f.BoolVarP(&mine, "mine", "m", false, "only the records about you")
	output = addOutputFlag(cmd)
	return cmd
}

// firstAuditPage reads the first page of q's records: newest first, or,
// when following, oldest first with the sequence number to follow from.
//
// Following reads the newest record of all before the page, not after it:
// a record written once that read is done has a higher sequence number, so
// it is either on the page or printed by the follow loop. Read after the
// page, a matching record written between the two reads was on neither.
func firstAuditPage(fetch func(client.AuditQuery) (client.AuditPage, error), q client.AuditQuery, follow bool) (
	recs []client.AuditRecord, after int64, err error) {
	if follow {
		newest, err := fetch(client.AuditQuery{Limit: 1})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range newest.Records {
			after = max(after, r.Seq)
		}
	}
	page, err := fetch(q)
	if err != nil {
		return nil, 0, err
	}
	recs = page.Records
	if follow { // oldest first from here on
		slices.Reverse(recs)
		for _, r := range recs {
			after = max(after, r.Seq)
		}
	}
	return recs, after, nil
}

// followAudit prints the records written after sequence number after,
// until the command's context ends (Ctrl-C).
func followAudit(cmd *cobra.Command, fetch func(client.AuditQuery) (client.AuditPage, error),
	q client.AuditQuery, after int64, output string) error {
	t := time.NewTicker(auditFollowEvery)
	defer t.Stop()
	for {
		select {
		case <-cmd.Context().Done():
			return nil
		case <-t.C:
		}
		fq := q
		fq.Before, fq.After, fq.Limit = 0, after, 1000
		p, err := fetch(fq)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "courier: list audit records: %v (retrying)\n", err)
			continue
		}
		if err := printAudit(cmd.OutOrStdout(), output, p.Records, false); err != nil {
			return err
		}
		for _, r := range p.Records {
			after = max(after, r.Seq)
		}
	}
}

// printAudit prints records as a table (with a header when header) or,
// for -o json, as one array (header) or one object per line (following).
func printAudit(w io.Writer, output string, recs []client.AuditRecord, header bool) error {
	if output == outputJSON && header {
		if recs == nil {
			recs = []client.AuditRecord{}
		}
		return writeJSON(w, recs)
	}
	if output == outputJSON { // following: one object per line
		enc := json.NewEncoder(w)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(recs) == 0 {
		return nil
	}
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if header {
		t.row("SEQ", "TIME", "ACTOR", "FROM", "ACTION", "TARGET", "OUTCOME", "DETAILS")
	}
	for _, r := range recs {
		actor := r.Actor.Name
		if actor == "" {
			actor = r.Actor.ID
		}
		if r.Actor.Kind != "user" {
			actor = r.Actor.Kind + ":" + actor
		}
		target := r.Target.Name
		if target == "" {
			target = r.Target.ID
		}
		outcome := r.Outcome
		if r.Reason != "" {
			outcome += ": " + r.Reason
		}
		t.row(fmt.Sprint(r.Seq), r.Time.UTC().Format(time.RFC3339), actor, r.Source, r.Action,
			r.Target.Kind+" "+target, outcome, string(r.Details))
	}
	return t.flush()
}

func newAuditVerifyCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit record was edited, removed or reordered",
		Long: `Ask the server to walk the audit log's hash chain, from the oldest record
kept to the newest, and report the first record that was edited, removed
or reordered (admins and auditors). It exits with status 1 when the chain
is broken. The head it prints (sequence number and hash) can be compared
with one published earlier in the server log or the audit log file: a
chain rewritten from the start verifies, but no longer matches a head
published before.`,
		Example: `  courier audit verify
  courier audit verify -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep client.AuditReport
			err := show(cmd, *output, "verify the audit log", func(ctx context.Context, c *client.Client) (client.AuditReport, error) {
				var err error
				rep, err = c.VerifyAudit(ctx)
				return rep, err
			}, func(w io.Writer, _ *client.Client, rep client.AuditReport) error {
				if rep.OK {
					fmt.Fprintf(w, "The audit log is intact: %d records checked (%d to %d); head %s.\n",
						rep.Checked, rep.From, rep.To, rep.Head)
					return nil
				}
				fmt.Fprintf(w, "The audit log is BROKEN at record %d (%s): %s.\n", rep.BadSeq, rep.Problem, rep.Detail)
				return nil
			})
			if err == nil && !rep.OK {
				return &exitStatusError{code: 1, msg: fmt.Sprintf("audit record %d was %s", rep.BadSeq, rep.Problem)}
			}
			return err
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}
