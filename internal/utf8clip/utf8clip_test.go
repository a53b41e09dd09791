package utf8clip

import (
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 4, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"},     // é is two bytes: never half of it
		{"a€b", 3, "a"},    // € is three bytes
		{"a€b", 4, "a€"},   // exactly the rune
		{"𝄞x", 3, ""},      // a four-byte rune cut at 3
		{"x\xffy", 2, "x"}, // a trailing invalid byte looks cut: it goes
	} {
		got := Clip(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > tt.n {
			t.Errorf("Clip(%q, %d) is %d bytes", tt.in, tt.n, len(got))
		}
		if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q is not valid UTF-8", tt.in, tt.n, got)
		}
	}
}
