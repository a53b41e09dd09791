package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/courierhq/courier/controlplane/store"
)

// trimLogsSQL is the SQLite store's trim (store/startlogs.go) with
// PostgreSQL placeholders: $1 workspace, $2 max bytes, $3 max lines.
const trimLogsSQL = `DELETE FROM workspace_logs WHERE workspace_id = $1 AND seq <= (
	SELECT seq FROM (
		SELECT seq, SUM(bytes) OVER (ORDER BY seq DESC) AS total, ROW_NUMBER() OVER (ORDER BY seq DESC) AS n
		FROM workspace_logs WHERE workspace_id = $1) w
	WHERE total > $2 OR n > $3 ORDER BY seq DESC LIMIT 1)`

// AppendWorkspaceLogs implements store.Store. The seq row's update locks
// it, so two replicas appending to one workspace take turns. Output is
// shown text: NUL and invalid UTF-8 are made storable (shown).
func (s *Store) AppendWorkspaceLogs(ctx context.Context, workspaceID string, lines []store.LogLine, lim store.LogLimits) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if !storable(workspaceID) {
		return 0, store.ErrNotFound
	}
	lines = lim.Trim(lines)
	sources, streams, texts := make([]string, len(lines)), make([]string, len(lines)), make([]string, len(lines))
	ats, sizes := make([]int64, len(lines)), make([]int64, len(lines))
	for i, l := range lines {
		sources[i], streams[i], texts[i] = shown(l.Source), shown(l.Stream), shown(l.Text)
		ats[i], sizes[i] = nanos(l.At), int64(len(texts[i]))
	}
	var last int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO workspace_log_seq(workspace_id, last_seq) VALUES ($1, $2)
			ON CONFLICT (workspace_id) DO UPDATE SET last_seq = workspace_log_seq.last_seq + excluded.last_seq
			RETURNING last_seq`, workspaceID, len(lines)).Scan(&last)
		if code, _ := sqlState(err); code == codeForeignKey {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if len(lines) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO workspace_logs(workspace_id, seq, source, stream, at, text, bytes)
				SELECT $1, $2 + x.ord, x.src, x.stream, x.at, x.text, x.bytes
				FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[])
					WITH ORDINALITY AS x(src, stream, at, text, bytes, ord)`,
				workspaceID, last-int64(len(lines)), sources, streams, ats, texts, sizes); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, trimLogsSQL, workspaceID, store.Bound(lim.MaxBytes), store.Bound(lim.MaxLines))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: append workspace logs: %w", err)
	}
	return last, nil
}

// WorkspaceLogs implements store.Store.
func (s *Store) WorkspaceLogs(ctx context.Context, workspaceID string, q store.LogQuery) ([]store.LogLine, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(workspaceID, q.Source) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, source, stream, at, text FROM workspace_logs
		WHERE workspace_id = $1 AND seq > $2 AND ($3 = '' OR source = $3) ORDER BY seq LIMIT $4`,
		workspaceID, q.After, q.Source, store.Bound(q.Limit))
	return collect(rows, err, func(r rowScanner) (store.LogLine, error) {
		var (
			l  store.LogLine
			at int64
		)
		err := r.Scan(&l.Seq, &l.Source, &l.Stream, &at, &l.Text)
		l.At = fromNanos(at)
		return l, err
	})
}

// SetScriptRun implements store.Store.
func (s *Store) SetScriptRun(ctx context.Context, workspaceID string, r store.ScriptRun) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storable(workspaceID) {
		return store.ErrNotFound
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO workspace_script_runs(workspace_id, source, state, exit_code, started_at, duration_ms, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, source) DO UPDATE SET state = excluded.state,
		exit_code = excluded.exit_code, started_at = excluded.started_at, duration_ms = excluded.duration_ms,
		updated_at = excluded.updated_at`,
		workspaceID, shown(r.Source), shown(r.State), r.ExitCode, nanos(r.StartedAt), r.Duration.Milliseconds(), nanos(r.UpdatedAt))
	if code, _ := sqlState(err); code == codeForeignKey {
		return store.ErrNotFound
	}
	return err
}

// ScriptRuns implements store.Store.
func (s *Store) ScriptRuns(ctx context.Context, workspaceID string) ([]store.ScriptRun, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storable(workspaceID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT source, state, exit_code, started_at, duration_ms, updated_at
		FROM workspace_script_runs WHERE workspace_id = $1 ORDER BY started_at, source`, workspaceID)
	return collect(rows, err, func(r rowScanner) (store.ScriptRun, error) {
		var (
			run              store.ScriptRun
			started, ms, upd int64
		)
		err := r.Scan(&run.Source, &run.State, &run.ExitCode, &started, &ms, &upd)
		run.StartedAt, run.Duration, run.UpdatedAt = fromNanos(started), time.Duration(ms)*time.Millisecond, fromNanos(upd)
		return run, err
	})
}
