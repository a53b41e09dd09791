// Package stmtcache keeps each database connection's prepared statements
// for reuse: a database/sql driver wrapper that answers ExecContext and
// QueryContext from statements prepared once per connection and query text.
//
// database/sql prepares a statement for every call it is not handed a
// *sql.Stmt for, and a driver such as modernc.org/sqlite then parses and
// plans the SQL every time: a fifth of the control plane's CPU per API
// request, for the same few dozen query texts. Wrapping the driver keeps
// every call site as it is.
//
// A cached statement is used by one call at a time: a query whose rows are
// still open (a second query of the same text on the same connection while
// the first is being read) goes to the driver uncached. Each connection
// caches at most Config.Max texts and then stops adding, so query texts
// built at run time cannot grow it without bound. Statements are closed
// with their connection.
package stmtcache

import (
	"context"
	"database/sql/driver"
	"errors"
)

// ErrNotSupported is returned by Connect when the wrapped driver's
// connections cannot prepare with a context or execute prepared statements
// with one.
var ErrNotSupported = errors.New("stmtcache: the driver's connections lack context-aware prepare or statements")

// Connector opens connections with the driver d and the data source name,
// each with its own cache of up to max statements. Use it with
// sql.OpenDB.
func Connector(d driver.Driver, name string, max int) driver.Connector {
	return &connector{d: d, name: name, max: max}
}

type connector struct {
	d    driver.Driver
	name string
	max  int
}

// Connect opens a driver connection and wraps it.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	var (
		dc  driver.Conn
		err error
	)
	if dctx, ok := c.d.(driver.DriverContext); ok {
		var cn driver.Connector
		if cn, err = dctx.OpenConnector(c.name); err != nil {
			return nil, err
		}
		dc, err = cn.Connect(ctx)
	} else {
		dc, err = c.d.Open(c.name)
	}
	if err != nil {
		return nil, err
	}
	return wrap(dc, c.max)
}

// Driver returns the wrapped driver.
func (c *connector) Driver() driver.Driver { return c.d }

// baseConn is what a wrapped connection must offer.
type baseConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
}

func wrap(dc driver.Conn, max int) (driver.Conn, error) {
	b, ok := dc.(baseConn)
	if !ok {
		_ = dc.Close()
		return nil, ErrNotSupported
	}
	return &conn{base: b, max: max, stmts: map[string]*entry{}}, nil
}

// conn is a driver connection with its statement cache. database/sql uses
// a connection from one goroutine at a time, so the cache needs no lock.
type conn struct {
	base  baseConn
	max   int
	stmts map[string]*entry
}

type entry struct {
	st   driver.Stmt
	busy bool // its rows are open
}

// statement returns the cached statement for query, preparing it if there
// is room, or nil: the caller then goes to the driver directly.
func (c *conn) statement(ctx context.Context, query string) (*entry, error) {
	if e, ok := c.stmts[query]; ok {
		if e.busy {
			return nil, nil
		}
		return e, nil
	}
	if len(c.stmts) >= c.max {
		return nil, nil
	}
	st, err := c.base.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	se, ok1 := st.(driver.StmtExecContext)
	sq, ok2 := st.(driver.StmtQueryContext)
	if !ok1 || !ok2 || se == nil || sq == nil {
		_ = st.Close()
		return nil, nil
	}
	e := &entry{st: st}
	c.stmts[query] = e
	return e, nil
}

// ExecContext runs query through its cached statement.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.base.ExecContext(ctx, query, args)
	}
	e.busy = true
	defer func() { e.busy = false }()
	return e.st.(driver.StmtExecContext).ExecContext(ctx, args)
}

// QueryContext runs query through its cached statement, which stays busy
// until the rows are closed.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	e, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.base.QueryContext(ctx, query, args)
	}
	e.busy = true
	r, err := e.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		e.busy = false
		return nil, err
	}
	return &rows{Rows: r, e: e}, nil
}

// rows frees its statement for the next call when closed.
type rows struct {
	driver.Rows
	e *entry
}

// Close closes the driver's rows and frees the statement.
func (r *rows) Close() error {
	err := r.Rows.Close()
	r.e.busy = false
	return err
}

// Prepare is the driver's, uncached: a *sql.Stmt is already reused.
func (c *conn) Prepare(query string) (driver.Stmt, error) { return c.base.Prepare(query) }

// PrepareContext is the driver's, uncached.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.base.PrepareContext(ctx, query)
}

// Begin is the driver's.
//
// Deprecated: database/sql calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) { return c.base.Begin() }

// BeginTx is the driver's.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.base.BeginTx(ctx, opts)
}

// Close closes every cached statement, then the connection.
func (c *conn) Close() error {
	var errs []error
	for q, e := range c.stmts {
		errs = append(errs, e.st.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.base.Close())
	return errors.Join(errs...)
}

// Ping is the driver's, where it has one.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.base.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession is the driver's, where it has one.
func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.base.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid is the driver's, where it has one.
func (c *conn) IsValid() bool {
	if v, ok := c.base.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}
