package identity

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is the "d" of a lifetime: 24 hours (a calendar day's daylight-saving
// shifts are not counted).
const Day = 24 * time.Hour

// MinLifetime is the shortest lifetime a token may ask for: anything
// shorter is almost certainly a typo ("30s" for "30d").
const MinLifetime = time.Minute

// Lifetime errors, wrapped by every error of ParseLifetime.
var (
	// ErrBadLifetime is a lifetime that does not parse, or is too short.
	ErrBadLifetime = errors.New("invalid lifetime")
	// ErrLifetimeTooLong is a lifetime over the maximum allowed.
	ErrLifetimeTooLong = errors.New("lifetime too long")
)

// ParseLifetime parses a token lifetime: a number of days ("30d", "90d"),
// a Go duration ("12h", "1h30m"), or days followed by a Go duration
// ("1d12h"). It must be at least MinLifetime and, when max is positive, at
// most max. A bare number is refused: its unit would be a guess. Errors
// wrap ErrBadLifetime or ErrLifetimeTooLong and quote the input (a
// lifetime is never a secret), truncated.
func ParseLifetime(s string, max time.Duration) (time.Duration, error) {
	return ParseLifetimeAtLeast(s, MinLifetime, max)
}

// ParseLifetimeAtLeast is ParseLifetime with its own floor least (raised
// to MinLifetime) and ceiling most (none when not positive); a refusal
// names the bound.
func ParseLifetimeAtLeast(s string, least, most time.Duration) (time.Duration, error) {
	least = max(least, MinLifetime)
	d, err := parse(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w %q: %s", ErrBadLifetime, clip(s), err.Error())
	}
	if d < least {
		return 0, fmt.Errorf("%w %q: must be at least %s", ErrBadLifetime, clip(s), FormatLifetime(least))
	}
	if most > 0 && d > most {
		return 0, fmt.Errorf("%w: %q is longer than this server's maximum of %s", ErrLifetimeTooLong, clip(s), FormatLifetime(most))
	}
	return d, nil
}

func parse(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("it is empty; use days (30d) or hours and minutes (12h, 90m)")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, errors.New("a number needs a unit: d (days), h (hours) or m (minutes), as in 30d")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil || i == 0 {
			return 0, errors.New("days must be a whole number before the d, as in 30d")
		}
		if n > math.MaxInt64/uint64(Day) {
			return 0, errors.New("that is too many days")
		}
		days, s = time.Duration(n)*Day, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, errors.New("it must be a positive duration")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("use days (30d), a duration (12h, 90m) or both (1d12h)")
	}
	if d > math.MaxInt64-days {
		return 0, errors.New("that is too long")
	}
	return days + d, nil
}

// FormatLifetime formats d the way ParseLifetime reads it: whole days as
// "30d", days and a rest as "1d12h0m0s", less than a day as Go does.
func FormatLifetime(d time.Duration) string {
	if d < Day {
		return d.String()
	}
	days, rest := d/Day, d%Day
	if rest == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, rest)
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
