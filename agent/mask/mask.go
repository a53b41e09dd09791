// Package mask replaces a workspace owner's secret values in the output of
// startup scripts and apps before it leaves the agent (its log, the control
// plane). It masks exact occurrences, within one line, of:
//
//   - each value of at least MinBytes bytes;
//   - each line of a multi-line value (a PEM key, a value with a trailing
//     newline as stdin gives it), when that line has at least MinBytes;
//   - the base64 forms of each value and of the value without its trailing
//     newline: standard and URL alphabets, padded and unpadded.
//
// It does not mask: values shorter than MinBytes (too many false hits), a
// value split across two output lines or across the 64 KiB cut of a longer
// line (agent/scripts masks lines whole before cutting them at 16 KiB),
// a value transformed otherwise (quoted, escaped, hex, URL-encoded, base64
// of a longer text that contains it), or a value the agent never received.
// Masking errs on the side of hiding: text that merely equals a value is
// masked too.
package mask

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/courierhq/courier/agent/proto"
)

// MinBytes is the shortest value that is masked.
const MinBytes = 6

// Masker masks a fixed set of values. The zero value and nil mask nothing.
// Safe for concurrent use (it is immutable).
type Masker struct {
	r *strings.Replacer
	n int
}

// New returns a Masker for values (duplicates and short values are fine).
func New(values []string) *Masker {
	seen := map[string]bool{}
	var forms []string
	add := func(s string) {
		if len(s) >= MinBytes && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	encodings := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
	for _, v := range values {
		if len(v) < MinBytes {
			continue
		}
		add(v)
		for _, line := range strings.Split(v, "\n") {
			add(strings.TrimSuffix(line, "\r"))
		}
		trimmed := strings.TrimRight(v, "\r\n")
		for _, e := range encodings {
			add(e.EncodeToString([]byte(v)))
			if trimmed != v && len(trimmed) >= MinBytes {
				add(e.EncodeToString([]byte(trimmed)))
			}
		}
	}
	if len(forms) == 0 {
		return &Masker{}
	}
	// strings.Replacer tries the old strings in argument order at each
	// position: longest first, so a value containing another is masked
	// whole.
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, proto.Mask)
	}
	return &Masker{r: strings.NewReplacer(pairs...), n: len(forms)}
}

// Mask returns s with every masked form replaced by proto.Mask.
func (m *Masker) Mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// Forms is how many distinct strings m masks (for the agent's log).
func (m *Masker) Forms() int {
	if m == nil {
		return 0
	}
	return m.n
}
