package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/controlplane/audit"
	"github.com/courierhq/courier/controlplane/store/stmtcache"
	"go.uber.org/zap"
	"modernc.org/sqlite" // the database/sql driver, pure Go
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLite is the embedded Store: one database file in WAL mode.
//
// Writes are serialized by writeMu (SQLite allows one writer at a time
// anyway; doing it in Go avoids busy-retry storms), committed in groups
// (see write) and each runs in its own transaction or savepoint,
// so a CheckFunc sees a consistent set and parallel writers cannot together
// exceed a cap. Reads run concurrently. synchronous=FULL makes every
// acknowledged write survive a crash or SIGKILL.
type SQLite struct {
	db     *sql.DB
	log    *zap.Logger
	closed atomic.Bool

	// writeMu serializes write transactions, and guards the audit chain's
	// head as the batch being committed has advanced it (see appendAudit).
	writeMu sync.Mutex
	// wconn is the one pooled connection every group commit runs on
	// (writerConn), opened at the first write and held until Close. Its
	// page cache stays warm: SQLite empties a connection's cache whenever
	// another connection committed since its last transaction, so with
	// writes spread over the pool each batch began by reading again the
	// pages it was about to change (the tables' right edges, their
	// indexes, the audit head). Readers share the rest of the pool.
	wconn     *sql.Conn
	batchHead *audit.Head
	batchRecs []audit.Record
	// involvesAt is when a group commit last indexed users' audit
	// records; involvesEvery how often it does (see audit_involves.go).
	involvesAt    time.Time
	involvesEvery time.Duration

	// queueMu guards the fields that follow: the writes waiting for the
	// next group commit, and whether a writer is committing them (see
	// write).
	queueMu sync.Mutex
	queue   []*writeReq
	leading bool
}

var _ Store = (*SQLite)(nil)

// maxOpenConns bounds the pooled SQLite connections: one writer at a time
// and readers beside it.
const maxOpenConns = 16

// maxCachedStatements bounds each connection's statement cache: room for
// every fixed query text the store has, several times over.
const maxCachedStatements = 256

// OpenSQLite opens (creating if needed) the database at path and applies any
// pending migrations.
func OpenSQLite(ctx context.Context, path string, logger *zap.Logger) (*SQLite, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	// The database holds sealed values, password hashes and token hashes:
	// create it readable by its owner only (SQLite keeps an existing
	// file's mode, and gives the -wal and -shm files the same).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		_ = f.Close()
	}
	q := url.Values{}
	// busy_timeout comes first: the pragmas run on every new pooled
	// connection, and journal_mode needs a lock that a concurrent writer
	// may hold; without the timeout in place that open fails at once.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	// Write transactions begin IMMEDIATE: they take the write lock at BEGIN,
	// where busy_timeout applies. A deferred transaction that has read and
	// then writes is refused at once (SQLITE_BUSY, no waiting) whenever any
	// other connection — a new pooled one running its pragmas, another
	// process such as `courier server reseal` — holds the lock for a moment.
	q.Set("_txlock", "immediate")
	// Each connection keeps its prepared statements (see stmtcache): the
	// store's queries are a few dozen fixed texts, and parsing and planning
	// one was a fifth of an API request's CPU.
	db := sql.OpenDB(stmtcache.Connector(&sqlite.Driver{}, "file:"+path+"?"+q.Encode(), maxCachedStatements))
	// A bounded pool, kept open: without a bound a burst of readers (every
	// agent reconnecting after a restart) opens one SQLite connection each,
	// running the pragmas above and growing a page cache every time, and
	// with the default two idle connections the next burst opens them all
	// again. Two cores' worth of readers is what can run anyway.
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	s := &SQLite{db: db, log: logger, involvesEvery: involvesEvery}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations not yet recorded, each in its own
// transaction, in file-name order.
func (s *SQLite) migrate(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s has no version number", base)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, _ := migrations.ReadFile(name)
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, version, time.Now().UnixNano()); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		s.log.Info("applied store migration", zap.String("migration", base))
	}
	return nil
}

// Close closes the database, after the group commit under way, if any. It
// is safe to call twice.
func (s *SQLite) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.writeMu.Lock()
	s.dropWriterConn()
	s.writeMu.Unlock()
	return s.db.Close()
}

func (s *SQLite) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// write runs fn in a serialized transaction, committing when it returns nil.
// Nanos is how both stores keep a time: Unix nanoseconds, 0 for the zero
// time. One encoding, so both return exactly the time they were given.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos reverses Nanos, in UTC.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nanos(t time.Time) int64 { return Nanos(t) }

func fromNanos(n int64) time.Time { return FromNanos(n) }

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// latestMigration returns the highest version among fsys's migrations
// (files named NNNN_*.sql under dir).
func latestMigration(fsys fs.FS, dir string) int {
	names, _ := fs.Glob(fsys, dir+"/*.sql")
	latest := 0
	for _, n := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(n, dir+"/"), "_", 2)[0])
		if err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// LatestMigration returns the highest migration version of fsys (files
// named NNNN_*.sql under dir); pgstore uses it for its own migrations.
func LatestMigration(fsys fs.FS, dir string) int { return latestMigration(fsys, dir) }

// ErrSchemaBehind is returned by Ready when the database lacks a
// migration this build knows.
var ErrSchemaBehind = errors.New("the database schema is older than this build")

// Ready implements Store.
func (s *SQLite) Ready(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	if want := latestMigration(migrations, "migrations"); int(v.Int64) < want {
		return fmt.Errorf("%w: at migration %d, want %d", ErrSchemaBehind, v.Int64, want)
	}
	return nil
}
