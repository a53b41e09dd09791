// Package rotate rewrites every stored secret value in place: Reseal seals
// each one under the keyring's first key (sealing plain rows too), Unseal
// turns each one back into plain bytes for a migration away from
// encryption at rest.
//
// Both are safe to run while control planes serve the same store, and
// converge when run again (after a crash, an interruption or a concurrent
// change):
//
//  1. read a batch of rows, ordered by ID (store.ScanSecrets);
//  2. decide each row's value from its recorded format (store.ValueFormat):
//     plain bytes, or opened with any key of the keyring;
//  3. skip the row if it is already in the wanted form;
//  4. otherwise write the new form with store.SwapSecretValue, which
//     replaces the value only if it is still the one read in (1): a
//     concurrent update wins and the row is counted as skipped; its
//     updated_at, which R8's collision rule orders by, never changes;
//  5. go on after the last ID of the batch until a batch comes back empty.
//
// No value, plain or sealed, is ever logged or reported: a Report holds
// counts and the owner ID and name of rows that failed.
package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/seal"
	"github.com/courierhq/courier/controlplane/store"
)

var (
	// ErrConfig is wrapped by every error of Config.Validate.
	ErrConfig = errors.New("invalid rotate config")
	// ErrAmbiguous: a row written before formats were recorded looks like a
	// sealed value but opens with no configured key. It may be a sealed value
	// whose key is missing, or a plain value that happens to look sealed; it
	// is left as it is.
	ErrAmbiguous = errors.New("value looks sealed but opens with no configured key (missing key, or a plain value that looks sealed)")
)

// MaxFailedRows bounds Report.FailedRows.
const MaxFailedRows = 50

// Config configures Reseal and Unseal.
type Config struct {
	// Store holds the secrets. Required.
	Store store.Store
	// Keyring seals with its first key and opens with all of them. Required:
	// Unseal needs every key that sealed a value still stored.
	Keyring *seal.Keyring
	// BatchSize is how many rows are read at a time. Default 100.
	BatchSize int
	// Logger logs progress (counts and row IDs, never values). Default nil:
	// nothing.
	Logger *zap.Logger
}

// DefaultConfig returns a Config with every default but Store and Keyring.
func DefaultConfig() Config { return Config{BatchSize: 100} }

// Validate reports the first problem with c, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrConfig)
	case c.Keyring == nil:
		return fmt.Errorf("%w: Keyring is required", ErrConfig)
	case c.BatchSize <= 0:
		return fmt.Errorf("%w: batch size must be positive", ErrConfig)
	}
	return nil
}

// Report counts what a run did to each row it read.
type Report struct {
	// Scanned is every row read.
	Scanned int
	// Changed rows were rewritten: resealed under the first key (Reseal) or
	// made plain (Unseal).
	Changed int
	// Current rows were already in the wanted form.
	Current int
	// Skipped rows changed between read and write (a concurrent update
	// wins); run again to check them.
	Skipped int
	// Failed rows could not be opened and were left as they are.
	Failed int
	// FailedRows describes the first MaxFailedRows failures: owner ID,
	// secret name and why, never a value.
	FailedRows []string
}

// Reseal seals every value under the first key of cfg.Keyring. It returns
// the report so far and the error that stopped it, if any (a row that fails
// to open does not stop it; see Report.Failed).
func Reseal(ctx context.Context, cfg Config) (Report, error) {
	return run(ctx, cfg, true)
}

// Unseal stores every value plain.
func Unseal(ctx context.Context, cfg Config) (Report, error) {
	return run(ctx, cfg, false)
}

func run(ctx context.Context, cfg Config, reseal bool) (Report, error) {
	var rep Report
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	after := ""
	for { // (5)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		batch, err := cfg.Store.ScanSecrets(ctx, after, cfg.BatchSize) // (1)
		if err != nil {
			return rep, fmt.Errorf("read secrets after %q: %w", after, err)
		}
		if len(batch) == 0 {
			return rep, nil
		}
		for _, sec := range batch {
			rep.Scanned++
			if err := row(ctx, cfg, reseal, sec, &rep); err != nil {
				return rep, err
			}
		}
		after = batch[len(batch)-1].ID
		log.Info("batch done", zap.String("last_id", after), zap.Int("scanned", rep.Scanned),
			zap.Int("changed", rep.Changed), zap.Int("current", rep.Current),
			zap.Int("skipped", rep.Skipped), zap.Int("failed", rep.Failed))
	}
}

// row handles one secret; only a store error is returned.
func row(ctx context.Context, cfg Config, reseal bool, sec store.Secret, rep *Report) error {
	plain, sealed, err := open(cfg.Keyring, sec) // (2)
	if err != nil {
		rep.Failed++
		if len(rep.FailedRows) < MaxFailedRows {
			rep.FailedRows = append(rep.FailedRows, fmt.Sprintf("user %s secret %q: %v", sec.UserID, sec.Name, err))
		}
		return nil
	}
	var (
		next   []byte
		format store.ValueFormat
	)
	switch {
	case reseal && sealed && cfg.Keyring.Current(sec.Value): // (3)
		if sec.Format == store.FormatSealed {
			rep.Current++
			return nil
		}
		// Sealed under the first key, format not yet recorded: record it.
		next, format = sec.Value, store.FormatSealed
	case reseal:
		if next, err = cfg.Keyring.Seal(plain, seal.AD(sec.UserID, sec.Name)); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		format = store.FormatSealed
	case !sealed && sec.Format == store.FormatPlain:
		rep.Current++
		return nil
	default:
		next, format = plain, store.FormatPlain
	}
	ok, err := cfg.Store.SwapSecretValue(ctx, sec.ID, sec.Value, next, format) // (4)
	switch {
	case err != nil:
		return fmt.Errorf("write secret %s: %w", sec.ID, err)
	case !ok:
		rep.Skipped++
	case bytes.Equal(next, sec.Value):
		rep.Current++ // only the format was recorded
	default:
		rep.Changed++
	}
	return nil
}

// open returns the raw value of sec and whether it is stored sealed. A row
// of unknown format (written before formats were recorded) is plain when it
// cannot be a sealed value, sealed when it opens, and ErrAmbiguous
// otherwise.
func open(kr *seal.Keyring, sec store.Secret) (plain []byte, sealed bool, err error) {
	switch sec.Format {
	case store.FormatPlain:
		return sec.Value, false, nil
	case store.FormatSealed:
		plain, err := kr.Open(sec.Value, seal.AD(sec.UserID, sec.Name))
		return plain, true, err
	}
	if !seal.LooksSealed(sec.Value) {
		return sec.Value, false, nil
	}
	if plain, err := kr.Open(sec.Value, seal.AD(sec.UserID, sec.Name)); err == nil {
		return plain, true, nil
	}
	return nil, false, ErrAmbiguous
}
