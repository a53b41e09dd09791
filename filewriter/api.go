// Package filewriter writes file secrets onto an afero.Fs. (Helper A: replace
// this stub; keep the exported names and signatures below, add what you need.)
package filewriter

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// Outcome is what happened to one file.
type Outcome string

// Outcomes.
const (
	Written       Outcome = "written"
	Unchanged     Outcome = "unchanged"
	LostCollision Outcome = "lost_collision"
	Failed        Outcome = "failed"
)

// Config configures a Writer.
type Config struct {
	Fs          afero.Fs    // default afero.NewOsFs()
	Home        string      // required: what "~/" expands to
	Logger      *zap.Logger // default zap.NewNop()
	Parallelism int         // default 8
	UID, GID    int         // -1: do not chown new files (default)
}

// File is one file secret to write. Content is the value; never logged.
type File struct {
	Secret    string    // secret name
	Path      string    // as the user wrote it: "~/x" or "/x"
	Content   []byte
	UpdatedAt time.Time // collision rule: newest wins, ties by name
}

// Result is the outcome for one File, in the order of the input.
type Result struct {
	Secret  string
	Path    string // resolved absolute path ("" if it could not be resolved)
	Outcome Outcome
	Err     error  // for Failed; names the secret and path, never the value
	Winner  string // for LostCollision: the secret whose file was kept
}

// Writer writes file secrets.
type Writer struct{ cfg Config }

// New validates cfg and returns a Writer. It starts nothing.
func New(cfg Config) (*Writer, error) { return nil, errors.New("not implemented") }

// Resolve expands "~/", cleans and resolves symlinked existing parents.
func (w *Writer) Resolve(p string) (string, error) { return "", errors.New("not implemented") }

// WriteAll resolves, settles collisions (one zap warning each), writes the
// survivors concurrently (bounded) and returns one Result per input File in
// input order.
func (w *Writer) WriteAll(ctx context.Context, files []File) []Result { return nil }
