// Package utf8clip cuts strings to a byte budget without splitting a UTF-8
// sequence, for text from untrusted peers (agents' log lines, lifecycle
// details) that the control plane bounds before storing or logging it.
package utf8clip

import "unicode/utf8"

// Clip returns s cut to at most n bytes. When the cut falls inside a
// multi-byte sequence, the partial sequence is dropped too, so the result
// is valid UTF-8 whenever s was.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
