//go:build !unix

package cli

import (
	"os"
	"time"
)

// pipeHasData cannot look at a pipe without reading it here: it reports
// false, and a value piped into an update with flags is left unread, as
// the command's help says.
func pipeHasData(*os.File, time.Duration) bool { return false }
