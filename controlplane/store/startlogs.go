package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LogLine is one stored line of a workspace's startup script or app
// output, masked of its owner's secret values by the agent.
type LogLine struct {
	// Seq is the line's cursor, set by AppendWorkspaceLogs: it grows by
	// one per line of a workspace and is never reused.
	Seq int64
	// Source is "script:NAME" or "app:SLUG".
	Source string
	// Stream is "stdout" or "stderr".
	Stream string
	At     time.Time
	Text   string
}

// LogLimits bounds a workspace's stored output: past either bound, the
// oldest lines are deleted. A zero field means no bound of that kind.
type LogLimits struct {
	// MaxLines is how many lines are kept.
	MaxLines int
	// MaxBytes is how many bytes of Text, summed, are kept.
	MaxBytes int
}

// Trim returns the newest lines of lines that fit lim on their own (a
// batch larger than the bounds need not be stored to be deleted).
func (lim LogLimits) Trim(lines []LogLine) []LogLine {
	n, total := 0, 0
	for i := len(lines) - 1; i >= 0; i-- {
		total += len(lines[i].Text)
		if (lim.MaxLines > 0 && n+1 > lim.MaxLines) || (lim.MaxBytes > 0 && total > lim.MaxBytes) {
			return lines[i+1:]
		}
		n++
	}
	return lines
}

// LogQuery selects stored lines.
type LogQuery struct {
	// After returns only lines with a greater Seq (0: from the oldest).
	After int64
	// Source, when set, returns only that source's lines.
	Source string
	// Limit caps how many lines are returned; 0 means no cap.
	Limit int
}

// ScriptRun is the last run of one startup script or app as its agent
// reported it.
type ScriptRun struct {
	// Source is "script:NAME" or "app:SLUG".
	Source string
	// State is one of the proto.Run* states.
	State string
	// ExitCode is the exit status for a run that ended (-1 when killed by
	// a signal or not started); 0 while running.
	ExitCode  int
	StartedAt time.Time
	// Duration is how long the run took, or has taken so far.
	Duration  time.Duration
	UpdatedAt time.Time
}

// trimLogsSQL deletes a workspace's oldest lines past the bounds: every
// line at or before the newest one whose running total (newest first) of
// lines or bytes passes its bound. Arguments: workspace twice, max bytes,
// max lines (a bound of 0 is passed as the largest int64).
const trimLogsSQL = `DELETE FROM workspace_logs WHERE workspace_id = ? AND seq <= (
	SELECT seq FROM (
		SELECT seq, SUM(bytes) OVER (ORDER BY seq DESC) AS total, ROW_NUMBER() OVER (ORDER BY seq DESC) AS n
		FROM workspace_logs WHERE workspace_id = ?) w
	WHERE total > ? OR n > ? ORDER BY seq DESC LIMIT 1)`

// Bound turns a limit where 0 means "none" into one a query can compare.
func Bound(n int) int64 {
	if n <= 0 {
		return 1<<63 - 1
	}
	return int64(n)
}

// AppendWorkspaceLogs implements Store.
func (s *SQLite) AppendWorkspaceLogs(ctx context.Context, workspaceID string, lines []LogLine, lim LogLimits) (int64, error) {
	lines = lim.Trim(lines)
	var last int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE id = ?`, workspaceID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO workspace_log_seq(workspace_id, last_seq) VALUES (?, ?)
			ON CONFLICT (workspace_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq RETURNING last_seq`,
			workspaceID, len(lines)).Scan(&last); err != nil {
			return err
		}
		first := last - int64(len(lines)) + 1
		for i, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO workspace_logs(workspace_id, seq, source, stream, at, text, bytes)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, workspaceID, first+int64(i), l.Source, l.Stream, nanos(l.At), l.Text, len(l.Text)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, trimLogsSQL, workspaceID, workspaceID, Bound(lim.MaxBytes), Bound(lim.MaxLines))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: append workspace logs: %w", err)
	}
	return last, nil
}

// WorkspaceLogs implements Store.
func (s *SQLite) WorkspaceLogs(ctx context.Context, workspaceID string, q LogQuery) ([]LogLine, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, source, stream, at, text FROM workspace_logs
		WHERE workspace_id = ? AND seq > ? AND (? = '' OR source = ?) ORDER BY seq LIMIT ?`,
		workspaceID, q.After, q.Source, q.Source, Bound(q.Limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var (
			l  LogLine
			at int64
		)
		if err := rows.Scan(&l.Seq, &l.Source, &l.Stream, &at, &l.Text); err != nil {
			return nil, err
		}
		l.At = fromNanos(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// SetScriptRun implements Store.
func (s *SQLite) SetScriptRun(ctx context.Context, workspaceID string, r ScriptRun) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM workspaces WHERE id = ?`, workspaceID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workspace_script_runs(workspace_id, source, state, exit_code, started_at, duration_ms, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, source) DO UPDATE SET state = excluded.state,
			exit_code = excluded.exit_code, started_at = excluded.started_at, duration_ms = excluded.duration_ms,
			updated_at = excluded.updated_at`,
			workspaceID, r.Source, r.State, r.ExitCode, nanos(r.StartedAt), r.Duration.Milliseconds(), nanos(r.UpdatedAt))
		return err
	})
}

// ScriptRuns implements Store.
func (s *SQLite) ScriptRuns(ctx context.Context, workspaceID string) ([]ScriptRun, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT source, state, exit_code, started_at, duration_ms, updated_at
		FROM workspace_script_runs WHERE workspace_id = ? ORDER BY started_at, source`, workspaceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ScriptRun
	for rows.Next() {
		var (
			r                ScriptRun
			started, ms, upd int64
		)
		if err := rows.Scan(&r.Source, &r.State, &r.ExitCode, &started, &ms, &upd); err != nil {
			return nil, err
		}
		r.StartedAt, r.Duration, r.UpdatedAt = fromNanos(started), time.Duration(ms)*time.Millisecond, fromNanos(upd)
		out = append(out, r)
	}
	return out, rows.Err()
}
