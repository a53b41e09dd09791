package identity

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Password length bounds, in bytes. bcrypt ignores every byte past 72, so
// a longer password would be accepted while only its start counted.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 72
)

var (
	// ErrPasswordTooShort: fewer than MinPasswordBytes bytes.
	ErrPasswordTooShort = errors.New("password too short")
	// ErrPasswordTooLong: more than MaxPasswordBytes bytes.
	ErrPasswordTooLong = errors.New("password too long")
	// ErrPasswordCommon: the password is on the built-in list of the most
	// common passwords, or is the account's own username or e-mail.
	ErrPasswordCommon = errors.New("password too easy to guess")
)

// PasswordError says why CheckPassword refused a password. Its message
// is for people (it never contains the password); Unwrap gives the
// sentinel.
type PasswordError struct {
	reason error
	detail string
}

// Error returns the explanation, which never quotes the password.
func (e *PasswordError) Error() string { return e.detail }

// Unwrap returns ErrPasswordTooShort, ErrPasswordTooLong or
// ErrPasswordCommon.
func (e *PasswordError) Unwrap() error { return e.reason }

//go:embed common-passwords.txt
var commonPasswordsFile string

var (
	commonOnce sync.Once
	common     map[string]struct{}
)

// commonPasswords is the embedded list, lower-cased, parsed once.
func commonPasswords() map[string]struct{} {
	commonOnce.Do(func() {
		common = map[string]struct{}{}
		sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			common[strings.ToLower(line)] = struct{}{}
		}
	})
	return common
}

// CheckPassword applies the password policy to a password someone is
// setting (never to one presented at login, so that a policy change locks
// nobody out):
//
//  1. at least MinPasswordBytes and at most MaxPasswordBytes bytes;
//  2. not one of the most common passwords (the embedded list, compared
//     case-insensitively);
//  3. not the account's own username or e-mail address (personal, compared
//     case-insensitively; empty entries are skipped).
//
// It returns nil or a *PasswordError naming the rule broken.
func CheckPassword(password string, personal ...string) error {
	switch {
	case len(password) < MinPasswordBytes:
		return &PasswordError{ErrPasswordTooShort, fmt.Sprintf("must be at least %d bytes", MinPasswordBytes)}
	case len(password) > MaxPasswordBytes:
		return &PasswordError{ErrPasswordTooLong, fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)}
	}
	folded := strings.ToLower(password)
	if _, ok := commonPasswords()[folded]; ok {
		return &PasswordError{ErrPasswordCommon, "is on the list of the most often used ones, which are guessed first; choose another"}
	}
	for _, p := range personal {
		if p != "" && strings.EqualFold(password, p) {
			return &PasswordError{ErrPasswordCommon, "must not be the username or e-mail address"}
		}
	}
	return nil
}
