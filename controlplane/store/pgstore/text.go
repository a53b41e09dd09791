package pgstore

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// PostgreSQL text holds neither NUL nor invalid UTF-8, which a Go string
// (and SQLite) may. The store keeps the contract of store.Store anyway:
//   - a lookup by such a string finds nothing (nothing stored can match);
//   - an identifying field (ID, name, username, env name, path) holding
//     one is refused with ErrText;
//   - operator-facing text (an agent's version and address, a note, a
//     lifecycle state) is stored with NUL dropped and invalid bytes
//     replaced by U+FFFD, as it is only ever shown.

// ErrText is returned when an identifying field holds NUL or invalid UTF-8.
var ErrText = errors.New("pgstore: text with NUL or invalid UTF-8 cannot be stored")

// storable reports whether every s can be a PostgreSQL text value.
func storable(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// shown makes operator-facing text storable.
func shown(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
