package envmerge

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// utf16Len is the length of s in UTF-16 code units, as Windows counts it.
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}

// BlockUnits is the size of env as a Windows environment block, in UTF-16
// code units: each "NAME=value" and its NUL, then the block's final NUL.
func BlockUnits(env []string) int {
	n := 1
	for _, kv := range env {
		n += utf16Len(kv) + 1
	}
	return n
}

// checkBlock refuses res when its block exceeds limit, naming the secret
// variables that did not fit: the largest first, as many as must go for
// the rest to fit. Values are never named.
func checkBlock(res Result, limit int) error {
	total := BlockUnits(res.Env)
	if total <= limit {
		return nil
	}
	type secret struct {
		name  string
		units int
	}
	var secrets []secret
	for i, kv := range res.Env {
		if res.layers[i] == LayerSecret {
			name, _, _ := strings.Cut(kv, "=")
			secrets = append(secrets, secret{name, utf16Len(kv) + 1})
		}
	}
	slices.SortFunc(secrets, func(a, b secret) int {
		if c := cmp.Compare(b.units, a.units); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	over := total - limit
	msg := fmt.Sprintf("%d UTF-16 units, %d over the limit of %d", total, over, limit)
	var cut []string
	for _, s := range secrets {
		if over <= 0 {
			break
		}
		cut = append(cut, fmt.Sprintf("%s (%d units)", s.name, s.units))
		over -= s.units
	}
	switch {
	case len(cut) == 0:
		msg += "; no env secret is set, the base and template env alone are too large"
	case over > 0:
		msg += "; even without its env secrets (" + strings.Join(cut, ", ") + ") the base and template env are too large"
	default:
		msg += "; the env secrets that do not fit: " + strings.Join(cut, ", ") + " (deliver large values as file secrets)"
	}
	return fmt.Errorf("%w: %s", ErrBlockTooLarge, msg)
}
