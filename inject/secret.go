// Package inject holds Courier's secret model and its rules: what a valid
// secret name, value, env target and file target are, the per-user limits
// counted on stored bytes, and the turning of a workspace manifest plus a set
// of secrets into a deterministic plan (files, env layer, warnings) that the
// agent applies. The control plane and the agent import the same rules, so a
// secret the server accepts is one the agent can inject.
package inject

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Field names used in FieldError.Field. They are the JSON names of the REST
// API, so an API error can point at the offending field directly.
const (
	FieldName        = "name"
	FieldValue       = "value"
	FieldDescription = "description"
	FieldEnvName     = "env_name"
	FieldFilePath    = "file_path"
)

// Validation limits. They are part of the contract between the control plane
// and the agent, so both refuse the same inputs.
const (
	// MaxNameBytes is the longest secret name. Names are URL path segments
	// and appear in CLI tables; 64 bytes is plenty for a human label.
	MaxNameBytes = 64
	// MaxDescriptionBytes is the longest description.
	MaxDescriptionBytes = 1024
	// MaxValueBytes is the largest raw value (R9: 24 KiB per secret).
	MaxValueBytes = 24 * 1024
	// MaxEnvNameBytes is the longest env target (R9).
	MaxEnvNameBytes = 256
	// MaxFilePathBytes is the longest file target, PATH_MAX on Linux.
	MaxFilePathBytes = 4096
	// MaxFileNameBytes is the longest component of a file target, NAME_MAX
	// on Linux and what other systems' file systems allow too.
	MaxFileNameBytes = 255
)

var (
	// ErrInvalid is wrapped by every validation failure; errors.Is(err,
	// ErrInvalid) tells a caller the input, not the system, is at fault.
	ErrInvalid = errors.New("invalid secret")
	// ErrLimit is wrapped by every refusal from CheckLimits.
	ErrLimit = errors.New("secret limit exceeded")
)

// Secret is one user secret. Value is the raw (unsealed) value; it must never
// be logged, printed or returned by an API after create or update (R2).
type Secret struct {
	ID          string
	Name        string
	Value       string
	Description string
	// EnvName, when non-empty, injects Value as this environment variable.
	EnvName string
	// FilePath, when non-empty, writes Value to this path ("~/..." or "/...").
	FilePath string
	// Disabled marks a paused secret: it has no Value, and a plan sets no
	// env and writes no file for it (OutcomeDisabled).
	Disabled bool
	// NotInScope marks a secret scoped away from this workspace: it has
	// no Value and is treated like a deleted one (OutcomeNotInScope).
	NotInScope bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// String never includes the value, so a Secret printed by accident with %v
// or in a panic leaks nothing.
func (s Secret) String() string {
	return fmt.Sprintf("Secret{name=%q env=%q file=%q}", s.Name, s.EnvName, s.FilePath)
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// FieldError is a validation failure of one field. Message never contains a
// secret value.
type FieldError struct {
	Field   string
	Message string
}

// Error is "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Errors is a list of field errors; it is returned when several fields of one
// secret are invalid so the caller can report all of them at once.
type Errors []*FieldError

// Error joins the field errors with "; ".
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) and errors.As(err, **FieldError)
// work on the list.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Fields returns the errors as field → message, for API error details.
func (es Errors) Fields() map[string]string {
	m := make(map[string]string, len(es))
	for _, e := range es {
		m[e.Field] = e.Message
	}
	return m
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ValidateName checks a secret name: required, valid UTF-8 (it travels in
// JSON), no surrounding space, no '/', '?' or '#' (it is a URL path
// segment), no control characters, at most MaxNameBytes.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fieldErr(FieldName, "is required")
	case len(name) > MaxNameBytes:
		return fieldErr(FieldName, "is %d bytes; the maximum is %d", len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return fieldErr(FieldName, "must be valid UTF-8 text")
	case strings.TrimSpace(name) != name:
		return fieldErr(FieldName, "must not start or end with white space")
	case strings.ContainsAny(name, "/?#"):
		return fieldErr(FieldName, "must not contain '/', '?' or '#' (it is used in URL paths)")
	case name == "." || name == "..":
		return fieldErr(FieldName, "must not be %q", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fieldErr(FieldName, "must not contain control characters")
		}
	}
	return nil
}

// ValidateValue checks a raw value: required and at most MaxValueBytes. A
// value is bytes: any bytes are valid for a file target (a keytab, a DER
// certificate); ValidateEnvValue adds the rules of an env target. The
// message never quotes the value.
func ValidateValue(value string) error {
	switch {
	case value == "":
		return fieldErr(FieldValue, "is required")
	case len(value) > MaxValueBytes:
		return fieldErr(FieldValue, "is %d bytes; the per-secret cap is %d bytes (%d over)",
			len(value), MaxValueBytes, len(value)-MaxValueBytes)
	}
	return nil
}

// ValidateEnvValue checks that a value can be an environment variable: UTF-8
// text without a NUL byte (a process environment cannot carry NUL, and env
// values are text). It says where the first offending byte is, never what
// the value holds.
func ValidateEnvValue(value string) error {
	if i := strings.IndexByte(value, 0); i >= 0 {
		return fieldErr(FieldValue, "holds a NUL byte (at byte %d), which an environment variable cannot carry; "+
			"a binary value can only be delivered as a file (clear env_name)", i)
	}
	if !utf8.ValidString(value) {
		return fieldErr(FieldValue, "is not valid UTF-8 text (first bad byte at %d); an environment variable "+
			"holds text, so a binary value can only be delivered as a file (clear env_name)", invalidUTF8At(value))
	}
	return nil
}

func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i
			}
		}
	}
	return len(s)
}

// ValidateDescription checks a description: optional, at most
// MaxDescriptionBytes, no NUL.
func ValidateDescription(d string) error {
	switch {
	case len(d) > MaxDescriptionBytes:
		return fieldErr(FieldDescription, "is %d bytes; the maximum is %d", len(d), MaxDescriptionBytes)
	case strings.IndexByte(d, 0) >= 0:
		return fieldErr(FieldDescription, "must not contain a NUL byte")
	case !utf8.ValidString(d):
		return fieldErr(FieldDescription, "must be valid UTF-8 text")
	}
	return nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are names the workspace or the session owns; a secret setting
// one of them would break shells or hijack the agent. Compared upper-cased.
var reservedEnv = map[string]string{
	"PATH": "the shell's search path", "HOME": "the user's home directory",
	"SHELL": "the login shell", "USER": "the session user", "LOGNAME": "the session user",
	"PWD": "the working directory", "OLDPWD": "the previous working directory",
	"LANG": "the locale", "TERM": "the terminal type", "IFS": "the shell's field separator",
	"CDPATH": "the shell's cd search path", "ENV": "a shell start-up file",
	"BASH_ENV": "a shell start-up file", "TMPDIR": "the temporary directory",
	"TMP": "the temporary directory", "TEMP": "the temporary directory",
	"HOSTNAME": "the host name", "SSH_AUTH_SOCK": "the SSH agent socket",
	"SSH_CLIENT": "the SSH session", "SSH_CONNECTION": "the SSH session",
	"SSH_TTY": "the SSH session", "EDITOR": "the user's editor",
	"VISUAL": "the user's editor", "PAGER": "the user's pager",
	"XDG_CONFIG_HOME": "an XDG base directory", "XDG_DATA_HOME": "an XDG base directory",
	"XDG_STATE_HOME": "an XDG base directory", "XDG_CACHE_HOME": "an XDG base directory",
	"XDG_RUNTIME_DIR": "an XDG base directory", "XDG_DATA_DIRS": "an XDG base directory",
	"XDG_CONFIG_DIRS": "an XDG base directory",
	// Windows' own: a secret applies to every workspace of its owner, and
	// the server cannot know which of them run Windows, so these are
	// reserved on every agent (and PATH above is Path there).
	"USERPROFILE": "the Windows user profile", "APPDATA": "a Windows profile directory",
	"LOCALAPPDATA": "a Windows profile directory", "PROGRAMDATA": "a Windows system directory",
	"ALLUSERSPROFILE": "a Windows system directory", "PUBLIC": "a Windows system directory",
	"SYSTEMROOT": "the Windows directory", "WINDIR": "the Windows directory",
	"SYSTEMDRIVE": "the Windows system drive", "HOMEDRIVE": "the Windows home drive",
	"HOMEPATH": "the Windows home path", "COMSPEC": "the Windows command interpreter",
	"PATHEXT": "the Windows executable extensions", "PROGRAMFILES": "a Windows system directory",
	"COMMONPROGRAMFILES": "a Windows system directory", "USERNAME": "the session user",
	"USERDOMAIN": "the session user's domain", "COMPUTERNAME": "the host name",
	"PSMODULEPATH": "PowerShell's module search path",
}

// reservedPrefixes are prefixes owned by Courier, git and the loader/locale.
var reservedPrefixes = []struct{ prefix, why string }{
	{"COURIER_", "reserved for Courier's own configuration"},
	{"GIT_", "reserved: git reads these to decide what to run and trust"},
	{"LC_", "reserved for the locale"},
	{"LD_", "reserved: the dynamic loader reads these"},
	{"DYLD_", "reserved: the macOS dynamic loader reads these"},
}

// ValidateEnvName checks an env target: empty (no env injection), or a
// POSIX-style name of at most MaxEnvNameBytes that the workspace does not own.
// Reserved names are compared case-insensitively because Windows env names
// are case-insensitive.
func ValidateEnvName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > MaxEnvNameBytes {
		return fieldErr(FieldEnvName, "is %d bytes; the env name cap is %d bytes (%d over)",
			len(name), MaxEnvNameBytes, len(name)-MaxEnvNameBytes)
	}
	if !envNameRE.MatchString(name) {
		return fieldErr(FieldEnvName, "must start with a letter or '_' and contain only letters, digits and '_'")
	}
	upper := strings.ToUpper(name)
	if upper == "COURIER" {
		return fieldErr(FieldEnvName, "COURIER is reserved: Courier's own name, like every COURIER_ name, belongs to its configuration")
	}
	if why, ok := reservedEnv[upper]; ok {
		return fieldErr(FieldEnvName, "%s is reserved: it is %s, which the workspace sets itself", upper, why)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(upper, p.prefix) {
			return fieldErr(FieldEnvName, "names starting with %s are %s", p.prefix, p.why)
		}
	}
	return nil
}

// ValidateFilePath checks a file target: empty (no file), or a path starting
// with "~/" or "/", without NUL, at most MaxFilePathBytes. "~user/..." and
// relative paths are refused: the agent only knows its own user's home.
func ValidateFilePath(p string) error {
	switch {
	case p == "":
		return nil
	case len(p) > MaxFilePathBytes:
		return fieldErr(FieldFilePath, "is %d bytes; the maximum is %d", len(p), MaxFilePathBytes)
	case strings.IndexByte(p, 0) >= 0:
		return fieldErr(FieldFilePath, "must not contain a NUL byte")
	case !utf8.ValidString(p):
		return fieldErr(FieldFilePath, "must be valid UTF-8 text (the API carries paths as JSON strings)")
	case strings.HasPrefix(p, "~") && !strings.HasPrefix(p, "~/"):
		return fieldErr(FieldFilePath, "must start with \"~/\" or \"/\"; \"~user\" paths are not supported")
	case !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "/"):
		return fieldErr(FieldFilePath, "must start with \"~/\" or \"/\"; relative paths are not supported")
	case p == "~/" || p == "/":
		return fieldErr(FieldFilePath, "must name a file, not a directory")
	case strings.HasSuffix(p, "/"):
		return fieldErr(FieldFilePath, "must name a file, not end with '/'")
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fieldErr(FieldFilePath, "must not contain control characters (a newline, a tab, an escape)")
	}
	key := FilePathKey(p)
	if key == "/" || key == "~" || strings.HasSuffix(key, "/..") || strings.HasSuffix(key, "/.") {
		// "/.", "~/.", "~/..", "/a/..": each names a directory once cleaned,
		// which the agent could never write a file to.
		return fieldErr(FieldFilePath, "must name a file; %q names a directory", p)
	}
	for _, c := range strings.Split(key, "/") {
		if len(c) > MaxFileNameBytes {
			return fieldErr(FieldFilePath, "has a name of %d bytes (%.20q…); file systems allow at most %d bytes a name", len(c), c, MaxFileNameBytes)
		}
	}
	return nil
}

// FilePathKey is p (a valid file target) cleaned as the agent will clean
// it, keeping "~" for the home it does not know yet: "~/a/./b" and
// "~/a/c/../b" are both "~/a/b", "/x//y" is "/x/y". Two targets with one
// key name the same file in every workspace. A ".." that climbs above the
// home stays (the home's depth is not known here): "~/../x" is "~/../x".
func FilePathKey(p string) string {
	rest, home := strings.CutPrefix(p, "~/")
	if !home {
		return path.Clean(p)
	}
	c := path.Clean(strings.TrimLeft(rest, "/"))
	if c == "." {
		return "~"
	}
	return "~/" + c
}

// FilePathsNest reports whether one of two file targets names a directory
// the other is in ("~/.npmrc" and "~/.npmrc/extra"): no workspace can hold
// both, since one needs a file where the other needs a directory.
func FilePathsNest(a, b string) bool {
	ka, kb := FilePathKey(a), FilePathKey(b)
	return strings.HasPrefix(kb, ka+"/") || strings.HasPrefix(ka, kb+"/")
}

// Validate checks every field of s and returns Errors listing each invalid
// field, or nil. A secret with an env target must hold text
// (ValidateEnvValue).
func (s Secret) Validate() error {
	var es Errors
	checks := []error{
		ValidateName(s.Name), ValidateValue(s.Value), ValidateDescription(s.Description),
		ValidateEnvName(s.EnvName), ValidateFilePath(s.FilePath),
	}
	if s.EnvName != "" && checks[1] == nil {
		checks = append(checks, ValidateEnvValue(s.Value))
	}
	for _, err := range checks {
		var fe *FieldError
		if errors.As(err, &fe) {
			es = append(es, fe)
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}
