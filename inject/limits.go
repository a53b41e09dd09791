package inject

import "fmt"

// SealOverhead is the number of bytes that encryption at rest adds to every
// stored value: a 1-byte format version, a 4-byte key identifier, a 12-byte
// AES-GCM nonce and a 16-byte authentication tag. The control plane's sealer
// produces exactly this layout (a test there holds it to this constant), so
// limits computed here match what the database stores.
const SealOverhead = 1 + 4 + 12 + 16

// StoredSize is the number of bytes a raw value of rawLen bytes occupies in
// the store: rawLen itself, plus SealOverhead when values are encrypted at
// rest. It is the one place that knows this; every cap (R9) is counted with it.
func StoredSize(rawLen int, encrypted bool) int {
	if encrypted {
		return rawLen + SealOverhead
	}
	return rawLen
}

// Limits are the per-user caps of R9, all in stored bytes.
type Limits struct {
	// MaxSecrets is the number of secrets one user may hold. Default 50.
	MaxSecrets int
	// MaxTotalBytes caps the stored value bytes of all of a user's secrets.
	// Default 200 KiB.
	MaxTotalBytes int
	// MaxEnvBytes caps the stored value bytes of secrets with an env target.
	// Default 24 KiB (Windows' environment block is ~32 KiB in all).
	MaxEnvBytes int
	// MaxSecretBytes caps the stored bytes of one value. Default 24 KiB.
	MaxSecretBytes int
}

// DefaultLimits returns the caps of R9.
func DefaultLimits() Limits {
	return Limits{
		MaxSecrets:     50,
		MaxTotalBytes:  200 * 1024,
		MaxEnvBytes:    24 * 1024,
		MaxSecretBytes: 24 * 1024,
	}
}

// Usage is what limits are checked against: a secret's stored size and
// whether it has an env target. Values are not needed, so the store can
// compute usage without unsealing anything.
type Usage struct {
	Name        string
	StoredBytes int
	HasEnv      bool
}

// LimitError is a refusal by CheckLimits. Its message names the cap, its
// limit and how far the request would go over it.
type LimitError struct {
	Cap   string // "secrets per user", "stored bytes per user", ...
	Limit int
	Want  int
	Unit  string // "secrets" or "bytes"
}

// Error names the cap, its limit and the overage.
func (e *LimitError) Error() string {
	return fmt.Sprintf("the %s cap is %d %s; this change would make it %d (%d over)",
		e.Cap, e.Limit, e.Unit, e.Want, e.Want-e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Unwrap() error { return ErrLimit }

// Field is the API field the limit concerns, for error details: the value
// for the byte caps of one secret and of all of them, the env target for the
// env-bytes cap, and the name for the count (a new name is a new secret).
func (e *LimitError) Field() string {
	switch e.Cap {
	case CapSecretBytes, CapTotalBytes:
		return FieldValue
	case CapEnvBytes:
		return FieldEnvName
	case CapSecrets:
		return FieldName
	}
	return ""
}

// Cap names used in LimitError.Cap.
const (
	CapSecrets     = "secrets per user"
	CapTotalBytes  = "stored value bytes per user"
	CapEnvBytes    = "stored env-injected value bytes per user"
	CapSecretBytes = "stored bytes per secret value"
)

// CheckLimits reports whether a user's secret set after a change stays within
// l. after is the complete set as it would be stored (the changed or new
// secrets included, deleted ones left out). It returns the first cap
// exceeded, checked in a fixed order so the same input always gives the same
// error: per-secret size, count, total bytes, env bytes.
func (l Limits) CheckLimits(after []Usage) error {
	for _, u := range after {
		if u.StoredBytes > l.MaxSecretBytes {
			return &LimitError{Cap: CapSecretBytes, Limit: l.MaxSecretBytes, Want: u.StoredBytes, Unit: "bytes"}
		}
	}
	t := Tally(after)
	if t.Secrets > l.MaxSecrets {
		return &LimitError{Cap: CapSecrets, Limit: l.MaxSecrets, Want: t.Secrets, Unit: "secrets"}
	}
	if t.StoredBytes > l.MaxTotalBytes {
		return &LimitError{Cap: CapTotalBytes, Limit: l.MaxTotalBytes, Want: t.StoredBytes, Unit: "bytes"}
	}
	if t.EnvBytes > l.MaxEnvBytes {
		return &LimitError{Cap: CapEnvBytes, Limit: l.MaxEnvBytes, Want: t.EnvBytes, Unit: "bytes"}
	}
	return nil
}

// Totals is a user's usage of the counted caps, summed as CheckLimits sums
// it, so what a page shows is what the next check will count.
type Totals struct {
	Secrets     int // number of secrets
	StoredBytes int // stored value bytes of all of them
	EnvBytes    int // stored value bytes of those with an env target
}

// Tally sums us.
func Tally(us []Usage) Totals {
	t := Totals{Secrets: len(us)}
	for _, u := range us {
		t.StoredBytes += u.StoredBytes
		if u.HasEnv {
			t.EnvBytes += u.StoredBytes
		}
	}
	return t
}
