package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// What Unavailable tells apart. Neither is returned by a Store method as
// is: the drivers' errors are, and Unavailable classifies them.
var (
	// ErrUnavailable: the database cannot be reached (refused, reset or
	// lost connections; a PostgreSQL that is shutting down or starting).
	ErrUnavailable = errors.New("the database is unavailable")
	// ErrStorageFull: the database's disk is full.
	ErrStorageFull = errors.New("the control plane's storage is full")
)

// sqliteFull is SQLite's SQLITE_FULL result code.
const sqliteFull = 13

// Unavailable classifies an error of either store: ErrStorageFull when the
// database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's disk_full or
// out-of-memory classes), ErrUnavailable when the database cannot be
// reached, nil for everything else — including errors of a request that
// reached a working database, and the request's own cancellation.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil // a request that gave up is not an outage
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteFull {
		return ErrStorageFull
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100" || pe.Code == "53200": // disk_full, out_of_memory
			return ErrStorageFull
		case strings.HasPrefix(pe.Code, "08"), // connection exceptions
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutting down, crash, starting
			return ErrUnavailable
		}
		return nil
	}
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		return ErrUnavailable
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		// A connection lost in the middle of a statement.
		return ErrUnavailable
	case pgconn.SafeToRetry(err):
		// pgx says the statement never reached the server.
		return ErrUnavailable
	}
	return nil
}
