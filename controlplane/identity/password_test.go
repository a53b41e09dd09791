package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	cases := []struct {
		name     string
		password string
		personal []string
		want     error
	}{
		{"empty", "", nil, ErrPasswordTooShort},
		{"seven bytes", "abcdefg", nil, ErrPasswordTooShort},
		{"seven bytes of multibyte runes count bytes", "ééé", nil, ErrPasswordTooShort},
		{"eight bytes, uncommon", "zq7-Lm2x", nil, nil},
		{"72 bytes", strings.Repeat("k", 71) + "!", nil, nil},
		{"73 bytes", strings.Repeat("k", 73), nil, ErrPasswordTooLong},
		{"on the list", "password", nil, ErrPasswordCommon},
		{"on the list, other case", "PassWord123", nil, ErrPasswordCommon},
		{"on the list, digits", "12345678", nil, ErrPasswordCommon},
		{"on the list, multibyte", "CONTRASEÑA", nil, ErrPasswordCommon},
		{"list entry with a suffix is not the entry", "password123-and-more", nil, nil},
		{"leading space is not trimmed", " password", nil, nil},
		{"the username", "Alice-Example", []string{"alice-example", "alice@example.com"}, ErrPasswordCommon},
		{"the e-mail", "ALICE@example.com", []string{"alice", "alice@example.com"}, ErrPasswordCommon},
		{"empty personal entries are skipped", "zq7-Lm2x", []string{"", ""}, nil},
		{"NUL bytes are just bytes", "pass\x00word", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPassword(c.password, c.personal...)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("CheckPassword(%q) = %v, want %v", c.password, err, c.want)
			}
			if err == nil {
				return
			}
			var pe *PasswordError
			if !errors.As(err, &pe) || pe.Error() == "" {
				t.Fatalf("error %v is not a *PasswordError with a message", err)
			}
			if len(c.password) >= 4 && strings.Contains(err.Error(), c.password) {
				t.Fatalf("the error %q quotes the password", err)
			}
		})
	}
}

// Every list entry is refused, and none is shorter than the length rule
// (which would make it dead weight).
func TestCommonPasswordList(t *testing.T) {
	list := commonPasswords()
	if len(list) < 100 {
		t.Fatalf("only %d common passwords loaded", len(list))
	}
	for p := range list {
		if len(p) < MinPasswordBytes {
			t.Errorf("%q is shorter than %d bytes: the length rule already refuses it", p, MinPasswordBytes)
		}
		if p != strings.ToLower(p) || p != strings.TrimSpace(p) {
			t.Errorf("%q is not lower case and trimmed", p)
		}
		if err := CheckPassword(strings.ToUpper(p)); !errors.Is(err, ErrPasswordCommon) {
			t.Errorf("CheckPassword(%q) = %v", strings.ToUpper(p), err)
		}
	}
}
