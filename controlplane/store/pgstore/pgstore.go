// Package pgstore is the PostgreSQL implementation of store.Store, for
// several control-plane replicas sharing one database. It passes the same
// conformance suite (storetest.Run) as the embedded SQLite store.
//
// Concurrency is settled in the database, never in process memory, so it
// holds across replicas:
//   - a user's secret writes lock that user's row before reading the set
//     (raising the user's secrets revision takes the FOR NO KEY UPDATE
//     lock; see secrettx.go), so a CheckFunc sees every change committed
//     before it and none can slip in before the commit; the unique index
//     on name backs this up;
//   - the first user is created under a table lock;
//   - login counters are updated under transaction-scoped advisory locks,
//     one per key, taken in key order;
//   - migrations run in one transaction under an advisory lock, so
//     replicas starting together apply each migration once;
//   - audit records are staged in the change's transaction and chained
//     by whichever replica holds the chain's head row lock (audit.go).
//
// Transactions that the server aborts for a deadlock or a serialization
// failure are retried a few times.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (the two-int form): lockSpace is Courier's namespace,
// the second number says what is locked.
const (
	lockSpace      = 0x436f7572 // "Cour"
	lockMigrations = 1
	// Login counters lock a one-bigint key each (see loginLock).
)

// maxAttempts bounds how often a transaction aborted by the server for a
// deadlock or serialization failure is run.
const maxAttempts = 5

// Store is the PostgreSQL store.Store. It is safe for concurrent use, and
// any number of Stores (in any number of processes) may share one database.
type Store struct {
	pool *pgxpool.Pool
	// probe is one connection of its own for Ready: a storm of agents
	// reconnecting can queue every connection of pool for seconds, and a
	// readiness check waiting in that queue would call a reachable
	// database unreachable (the replica scenario of courier-load saw every
	// replica leave the balancers at once).
	probe  *pgxpool.Pool
	log    *zap.Logger
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as libpq takes; a search_path parameter selects the
// schema) and applies any pending migrations. Errors and logs never include
// the password.
func Open(ctx context.Context, url string, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password, but say nothing of the
		// input to be sure.
		return nil, errors.New("pgstore: the PostgreSQL URL is not valid (the form is postgres://user[:password]@host[:port]/database[?param=value])")
	}
	where := describe(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect to %s: %w", where, err)
	}
	probeCfg := cfg.Copy()
	probeCfg.MaxConns, probeCfg.MinConns = 1, 0
	probe, err := pgxpool.NewWithConfig(ctx, probeCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect to %s: %w", where, err)
	}
	s := &Store{pool: pool, probe: probe, log: logger}
	if err := pool.Ping(ctx); err != nil {
		s.closePools()
		return nil, fmt.Errorf("pgstore: connect to %s: %w", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.closePools()
		return nil, err
	}
	logger.Info("opened PostgreSQL store", zap.String("database", where))
	return s, nil
}

// describe names the server, database and user of cfg, without the
// password, for logs and errors.
func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// migrate applies the embedded migrations not yet recorded, in file-name
// order, in one transaction under an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockSpace, lockMigrations); err != nil {
			return fmt.Errorf("pgstore: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("pgstore: migrations table: %w", err)
		}
		for _, name := range names {
			base := strings.TrimPrefix(name, "migrations/")
			version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("pgstore: migration %s has no version number", base)
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, _ := migrations.ReadFile(name)
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("pgstore: migration %s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)`, version, time.Now().UnixNano()); err != nil {
				return err
			}
			s.log.Info("applied store migration", zap.String("migration", base))
		}
		return nil
	})
}

// Close closes the connection pool. It is safe to call twice.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.closePools()
	return nil
}

func (s *Store) closePools() {
	s.pool.Close()
	s.probe.Close()
}

func (s *Store) check() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// tx runs fn in a READ COMMITTED transaction, committing when it returns
// nil, and runs it again (up to maxAttempts) when the server aborted it for
// a deadlock or serialization failure. fn must be safe to run again. The
// audit records armed in ctx (audit.InTx) are staged in it (see stage).
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := s.check(); err != nil {
		return err
	}
	fn, written := withAudit(ctx, fn)
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, fn)
		if attempt < maxAttempts && retryable(err) {
			continue
		}
		if err == nil {
			written()
		}
		return err
	}
}

// SQLSTATE codes the store acts on.
const (
	codeSerialization = "40001"
	codeDeadlock      = "40P01"
	codeUnique        = "23505"
	codeForeignKey    = "23503"
)

func sqlState(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

func retryable(err error) bool {
	code, _ := sqlState(err)
	return code == codeSerialization || code == codeDeadlock
}

// lockUser locks a user's row until the transaction ends, serializing the
// user's secret writers across every replica. FOR NO KEY UPDATE does not
// block inserts elsewhere that only reference the user (sessions,
// workspaces).
func lockUser(ctx context.Context, tx pgx.Tx, userID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: user %s: %w", userID, store.ErrNotFound)
	}
	return err
}

// nanos and fromNanos are the stores' one time encoding (store.Nanos).
func nanos(t time.Time) int64 { return store.Nanos(t) }

func fromNanos(n int64) time.Time { return store.FromNanos(n) }

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// rowScanner is a pgx.Row or pgx.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan.
func collect[T any](rows pgx.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Ready implements store.Store: the database answers and holds every
// migration of this build.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	var v *int64
	if err := s.probe.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	have := int64(0)
	if v != nil {
		have = *v
	}
	if want := store.LatestMigration(migrations, "migrations"); have < int64(want) {
		return fmt.Errorf("%w: at migration %d, want %d", store.ErrSchemaBehind, have, want)
	}
	return nil
}
