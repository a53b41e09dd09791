package mask

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	const canary = "canary-Zq9Xw3"
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n"
	m := New([]string{canary, "short", "token\n" + "", "abc", pem, "tok+/en?>>\n", ""})
	b64 := func(e *base64.Encoding, s string) string { return e.EncodeToString([]byte(s)) }
	cases := []struct {
		name, in, want string
	}{
		{"plain", "NPM_TOKEN=" + canary, "NPM_TOKEN=***"},
		{"twice", canary + canary + " " + canary, "****** ***"},
		{"std base64", "auth: " + b64(base64.StdEncoding, canary), "auth: ***"},
		{"raw std base64", b64(base64.RawStdEncoding, canary), "***"},
		{"url base64 of a value with + and /", b64(base64.URLEncoding, "tok+/en?>>\n"), "***"},
		{"raw url base64 without the newline", b64(base64.RawURLEncoding, "tok+/en?>>"), "***"},
		{"value without its trailing newline", "tok+/en?>>", "***"},
		{"a line of a multi-line value", "  MIIBOgIBAAJBAKj34GkxFhD9", "  ***"},
		{"short values are kept", "short abc token", "short abc token"},
		{"nothing to mask", "hello world", "hello world"},
		{"empty", "", ""},
		{"split value is not masked", canary[:5], canary[:5]},
		{"prefix of longer text", "x" + canary + "y", "x***y"},
	}
	for _, tc := range cases {
		if got := m.Mask(tc.in); got != tc.want {
			t.Errorf("%s: Mask(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestLongestFirst: a value that contains another is masked whole, so no
// piece of the longer one is left.
func TestLongestFirst(t *testing.T) {
	m := New([]string{"secret", "secret-and-more"})
	if got := m.Mask("a secret-and-more b"); got != "a *** b" {
		t.Errorf("got %q", got)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var m *Masker
	if m.Mask("secret-value") != "secret-value" || m.Forms() != 0 {
		t.Error("nil masker changed text")
	}
	if e := New(nil); e.Mask("secret-value") != "secret-value" || e.Forms() != 0 {
		t.Error("empty masker changed text")
	}
	// The value, its padded and unpadded base64 (the URL alphabet gives
	// the same strings for this value).
	if n := New([]string{"abcdefgh"}).Forms(); n != 3 {
		t.Errorf("forms of one 8-byte value: %d, want 3", n)
	}
}

// FuzzMask: for any value of MinBytes or more embedded in any text, the
// masked text holds no occurrence of the value.
func FuzzMask(f *testing.F) {
	f.Add("prefix ", "secret-1", " suffix")
	f.Add("", "aaaaaa", "aaaaa")
	f.Fuzz(func(t *testing.T, pre, v, post string) {
		if len(v) < MinBytes || strings.Contains(v, "\n") || strings.Contains(v, "*") {
			return
		}
		got := New([]string{v}).Mask(pre + v + post)
		if strings.Contains(got, v) {
			t.Fatalf("value %q survives in %q", v, got)
		}
	})
}
