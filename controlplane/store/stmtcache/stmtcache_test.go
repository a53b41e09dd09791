package stmtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"modernc.org/sqlite"
)

// fake is a driver whose connection counts what reaches it.
type fake struct {
	mu                                 sync.Mutex
	prepares, directQ, directE, closed int
}

func (f *fake) Open(string) (driver.Conn, error) { return &fakeConn{f: f}, nil }

type fakeConn struct{ f *fake }

func (c *fakeConn) count(p *int) { c.f.mu.Lock(); *p++; c.f.mu.Unlock() }
func (c *fakeConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}
func (c *fakeConn) PrepareContext(_ context.Context, q string) (driver.Stmt, error) {
	c.count(&c.f.prepares)
	return &fakeStmt{c: c, q: q}, nil
}
func (c *fakeConn) Close() error              { return nil }
func (c *fakeConn) Begin() (driver.Tx, error) { return nil, fmt.Errorf("no") }
func (c *fakeConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return nil, fmt.Errorf("no")
}
func (c *fakeConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	c.count(&c.f.directE)
	return driver.RowsAffected(1), nil
}
func (c *fakeConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	c.count(&c.f.directQ)
	return &fakeRows{}, nil
}

type fakeStmt struct {
	c *fakeConn
	q string
}

func (s *fakeStmt) Close() error                               { s.c.count(&s.c.f.closed); return nil }
func (s *fakeStmt) NumInput() int                              { return -1 }
func (s *fakeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(1), nil }
func (s *fakeStmt) Query([]driver.Value) (driver.Rows, error)  { return &fakeRows{}, nil }
func (s *fakeStmt) ExecContext(context.Context, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}
func (s *fakeStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return &fakeRows{}, nil
}

type fakeRows struct{ done bool }

func (r *fakeRows) Columns() []string { return []string{"x"} }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(1)
	return nil
}

func TestPreparesOncePerConnectionAndText(t *testing.T) {
	f := &fake{}
	c, err := Connector(f, "", 2).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cc := c.(*conn)
	ctx := context.Background()
	for range 3 {
		if _, err := cc.ExecContext(ctx, "A", nil); err != nil {
			t.Fatal(err)
		}
		r, err := cc.QueryContext(ctx, "B", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
	}
	if f.prepares != 2 || f.directE+f.directQ != 0 {
		t.Errorf("prepares %d, direct %d+%d; want 2, 0", f.prepares, f.directE, f.directQ)
	}
	// Full (max 2): a third text goes to the driver, uncached.
	for range 2 {
		_, _ = cc.ExecContext(ctx, "C", nil)
	}
	if f.prepares != 2 || f.directE != 2 {
		t.Errorf("over the bound: prepares %d, direct %d", f.prepares, f.directE)
	}
	// A statement whose rows are open is not used twice at once.
	r1, _ := cc.QueryContext(ctx, "B", nil)
	r2, _ := cc.QueryContext(ctx, "B", nil)
	if f.directQ != 1 {
		t.Errorf("second query while the first's rows are open: direct %d, want 1", f.directQ)
	}
	_ = r2.Close()
	_ = r1.Close()
	r3, _ := cc.QueryContext(ctx, "B", nil)
	_ = r3.Close()
	if f.directQ != 1 {
		t.Errorf("after the rows closed the cache was not used again: direct %d", f.directQ)
	}
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	if f.closed != 2 {
		t.Errorf("closed %d statements with the connection, want 2", f.closed)
	}
}

// On real SQLite: results are right through cached statements, including
// a query run again while its own rows are being read, and under
// concurrent use of the pool.
func TestOnSQLite(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)"
	db := sql.OpenDB(Connector(&sqlite.Driver{}, dsn, 16))
	defer db.Close()
	db.SetMaxOpenConns(4)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := w*1000 + i
				if _, err := db.ExecContext(ctx, `INSERT INTO t(k, v) VALUES (?, ?)`, k, fmt.Sprint("v", k)); err != nil {
					t.Error(err)
					return
				}
				var v string
				if err := db.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, k).Scan(&v); err != nil || v != fmt.Sprint("v", k) {
					t.Errorf("k %d: %q %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Nested: the same text again while its rows are open, in one tx (one
	// connection).
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT k FROM t WHERE k < ? ORDER BY k`
	rows, err := tx.QueryContext(ctx, q, 3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var k int
		_ = rows.Scan(&k)
		var inner int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+q+`)`, k+1).Scan(&inner); err != nil || inner != k+1 {
			t.Errorf("inner %d for k %d: %v", inner, k, err)
		}
		r2, err := tx.QueryContext(ctx, q, k+1)
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		for r2.Next() {
			m++
		}
		_ = r2.Close()
		if m != k+1 {
			t.Errorf("same text nested: %d rows, want %d", m, k+1)
		}
		n++
	}
	if err := rows.Close(); err != nil || n != 3 {
		t.Errorf("outer: %d rows, %v", n, err)
	}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&total); err != nil || total != 200 {
		t.Errorf("%d rows, %v", total, err)
	}
	// A failing statement leaves its cached twin usable.
	if _, err := db.ExecContext(ctx, `INSERT INTO t(k, v) VALUES (?, ?)`, 0, "dup"); err == nil {
		t.Error("duplicate key accepted")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t(k, v) VALUES (?, ?)`, 99999, "ok"); err != nil {
		t.Errorf("after a failure: %v", err)
	}
}

// BenchmarkPointQuery: one indexed SELECT through database/sql on SQLite,
// with each connection's statements cached and without (the driver then
// parses and plans the text on every call).
func BenchmarkPointQuery(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			dsn := "file:" + filepath.Join(b.TempDir(), "b.db") + "?_pragma=journal_mode(WAL)"
			var db *sql.DB
			if cached {
				db = sql.OpenDB(Connector(&sqlite.Driver{}, dsn, 16))
			} else {
				var err error
				if db, err = sql.Open("sqlite", dsn); err != nil {
					b.Fatal(err)
				}
			}
			defer db.Close()
			ctx := context.Background()
			if _, err := db.ExecContext(ctx, `CREATE TABLE secrets (user_id TEXT, name TEXT, value BLOB, PRIMARY KEY (user_id, name))`); err != nil {
				b.Fatal(err)
			}
			for i := range 50 {
				if _, err := db.ExecContext(ctx, `INSERT INTO secrets VALUES (?, ?, ?)`, "u", fmt.Sprint("s", i), []byte("v")); err != nil {
					b.Fatal(err)
				}
			}
			var v []byte
			i := 0
			for b.Loop() {
				i++
				if err := db.QueryRowContext(ctx, `SELECT value FROM secrets WHERE user_id = ? AND name = ?`, "u", fmt.Sprint("s", i%50)).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
