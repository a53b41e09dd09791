package inject

import (
	"errors"
	"strings"
	"testing"
)

const canary = "CANARY-inject-5d1e"

func TestValidateFields(t *testing.T) {
	tests := []struct {
		name  string
		fn    func(string) error
		in    string
		field string // "" means valid
		msg   string
	}{
		{"name ok", ValidateName, "api-key", "", ""},
		{"name unicode ok", ValidateName, "clé API", "", ""},
		{"name empty", ValidateName, "", FieldName, "required"},
		{"name leading space", ValidateName, " x", FieldName, "white space"},
		{"name trailing tab", ValidateName, "x\t", FieldName, "white space"},
		{"name slash", ValidateName, "a/b", FieldName, "'/'"},
		{"name question", ValidateName, "a?b", FieldName, "'?'"},
		{"name hash", ValidateName, "a#b", FieldName, "'#'"},
		{"name dotdot", ValidateName, "..", FieldName, "must not be"},
		{"name invalid UTF-8", ValidateName, "a\xffb", FieldName, "UTF-8"},
		{"name control", ValidateName, "a\x01b", FieldName, "control"},
		{"name too long", ValidateName, strings.Repeat("n", MaxNameBytes+1), FieldName, "maximum is 64"},
		{"name at max", ValidateName, strings.Repeat("n", MaxNameBytes), "", ""},

		{"value ok", ValidateValue, canary, "", ""},
		{"value empty", ValidateValue, "", FieldValue, "required"},
		{"value NUL ok for a file", ValidateValue, canary + "\x00", "", ""},
		{"value binary ok for a file", ValidateValue, "\xff\xfeA\x80" + canary, "", ""},
		{"env value text", ValidateEnvValue, canary + " é\n", "", ""},
		{"env value NUL", ValidateEnvValue, canary + "\x00", FieldValue, "NUL byte (at byte 18)"},
		{"env value invalid UTF-8", ValidateEnvValue, canary + "\xff", FieldValue, "not valid UTF-8 text (first bad byte at 18)"},
		{"env value truncated rune", ValidateEnvValue, canary + "\xc3", FieldValue, "not valid UTF-8"},
		{"value at cap", ValidateValue, strings.Repeat("v", MaxValueBytes), "", ""},
		{"value over cap", ValidateValue, strings.Repeat("v", MaxValueBytes+1), FieldValue, "24576 bytes (1 over)"},

		{"env empty ok", ValidateEnvName, "", "", ""},
		{"env ok", ValidateEnvName, "API_KEY", "", ""},
		{"env underscore start", ValidateEnvName, "_X1", "", ""},
		{"env digit start", ValidateEnvName, "1X", FieldEnvName, "must start"},
		{"env dash", ValidateEnvName, "A-B", FieldEnvName, "only letters"},
		{"env equals", ValidateEnvName, "A=B", FieldEnvName, "only letters"},
		{"env 256 ok", ValidateEnvName, "A" + strings.Repeat("B", 255), "", ""},
		{"env 257", ValidateEnvName, "A" + strings.Repeat("B", 256), FieldEnvName, "256 bytes (1 over)"},
		{"env PATH", ValidateEnvName, "PATH", FieldEnvName, "reserved"},
		{"env path lower", ValidateEnvName, "path", FieldEnvName, "PATH is reserved"},
		{"env Home mixed", ValidateEnvName, "Home", FieldEnvName, "HOME is reserved"},
		{"env Windows Path", ValidateEnvName, "Path", FieldEnvName, "PATH is reserved"},
		{"env Windows UserProfile", ValidateEnvName, "UserProfile", FieldEnvName, "USERPROFILE is reserved"},
		{"env Windows APPDATA", ValidateEnvName, "APPDATA", FieldEnvName, "APPDATA is reserved"},
		{"env Windows SystemRoot", ValidateEnvName, "SystemRoot", FieldEnvName, "SYSTEMROOT is reserved"},
		{"env Windows ComSpec", ValidateEnvName, "ComSpec", FieldEnvName, "COMSPEC is reserved"},
		{"env COURIER_ prefix", ValidateEnvName, "courier_agent_token", FieldEnvName, "COURIER_"},
		{"env COURIER bare", ValidateEnvName, "COURIER", FieldEnvName, "COURIER is reserved"},
		{"env courier lower", ValidateEnvName, "courier", FieldEnvName, "COURIER is reserved"},
		{"env Courier mixed", ValidateEnvName, "Courier", FieldEnvName, "COURIER is reserved"},
		{"env COURIERX ok", ValidateEnvName, "COURIERX", "", ""},
		{"env GIT_", ValidateEnvName, "GIT_SSH_COMMAND", FieldEnvName, "GIT_"},
		{"env LD_", ValidateEnvName, "LD_PRELOAD", FieldEnvName, "loader"},
		{"env DYLD_", ValidateEnvName, "DYLD_INSERT_LIBRARIES", FieldEnvName, "DYLD_"},
		{"env LC_", ValidateEnvName, "LC_ALL", FieldEnvName, "locale"},
		{"env XDG", ValidateEnvName, "XDG_CONFIG_HOME", FieldEnvName, "XDG"},
		{"env GITHUB ok", ValidateEnvName, "GITHUB_TOKEN", "", ""},

		{"file empty ok", ValidateFilePath, "", "", ""},
		{"file home", ValidateFilePath, "~/.config/tool/c.json", "", ""},
		{"file abs", ValidateFilePath, "/etc/tool.conf", "", ""},
		{"file relative", ValidateFilePath, "config", FieldFilePath, "relative"},
		{"file dotdot relative", ValidateFilePath, "../etc/passwd", FieldFilePath, "relative"},
		{"file tilde user", ValidateFilePath, "~root/x", FieldFilePath, "~user"},
		{"file tilde alone", ValidateFilePath, "~", FieldFilePath, "~user"},
		{"file NUL", ValidateFilePath, "/a\x00b", FieldFilePath, "NUL"},
		{"file invalid UTF-8", ValidateFilePath, "~/\xff", FieldFilePath, "UTF-8"},
		{"file root", ValidateFilePath, "/", FieldFilePath, "directory"},
		{"file trailing slash", ValidateFilePath, "~/dir/", FieldFilePath, "end with"},
		{"file 4096 ok", ValidateFilePath, longPath(4096), "", ""},
		{"file 4097", ValidateFilePath, longPath(4097), FieldFilePath, "maximum is 4096"},
		{"file name 255 ok", ValidateFilePath, "~/" + strings.Repeat("n", 255), "", ""},
		{"file name 256", ValidateFilePath, "~/" + strings.Repeat("n", 256) + "/x", FieldFilePath, "at most 255"},
		{"file dot", ValidateFilePath, "/.", FieldFilePath, "names a directory"},
		{"file home dot", ValidateFilePath, "~/.", FieldFilePath, "names a directory"},
		{"file home dotdot", ValidateFilePath, "~/..", FieldFilePath, "names a directory"},
		{"file home sub dotdot", ValidateFilePath, "~/a/..", FieldFilePath, "names a directory"},
		{"file abs dotdot", ValidateFilePath, "/etc/..", FieldFilePath, "names a directory"},
		{"file above home ok", ValidateFilePath, "~/../shared/x", "", ""},
		{"file dot inside ok", ValidateFilePath, "~/./a/../b", "", ""},
		{"file newline", ValidateFilePath, "~/a\nb", FieldFilePath, "control characters"},
		{"file escape", ValidateFilePath, "~/esc\x1b[31mred", FieldFilePath, "control characters"},
		{"file tab", ValidateFilePath, "/tmp/a\tb", FieldFilePath, "control characters"},
		{"file DEL", ValidateFilePath, "/tmp/a\x7f", FieldFilePath, "control characters"},

		{"description ok", ValidateDescription, "for tools", "", ""},
		{"description NUL", ValidateDescription, "a\x00", FieldDescription, "NUL"},
		{"description invalid UTF-8", ValidateDescription, "d\xc3", FieldDescription, "UTF-8"},
		{"description long", ValidateDescription, strings.Repeat("d", MaxDescriptionBytes+1), FieldDescription, "maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(tt.in)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.field)
			}
			if !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("message %q lacks %q", fe.Message, tt.msg)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the value: %q", err)
			}
		})
	}
}

func TestEveryReservedNameRefused(t *testing.T) {
	for name := range reservedEnv {
		for _, v := range []string{name, strings.ToLower(name)} {
			if err := ValidateEnvName(v); err == nil {
				t.Errorf("%s accepted", v)
			}
		}
	}
	for _, p := range reservedPrefixes {
		if err := ValidateEnvName(p.prefix + "X"); err == nil {
			t.Errorf("prefix %s accepted", p.prefix)
		}
	}
}

func TestSecretValidateListsAllFields(t *testing.T) {
	s := Secret{Name: "", Value: canary + "\x00", EnvName: "PATH", FilePath: "rel"}
	err := s.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 4 {
		t.Fatalf("err = %v, want 4 field errors", err)
	}
	f := es.Fields()
	for _, k := range []string{FieldName, FieldValue, FieldEnvName, FieldFilePath} {
		if f[k] == "" {
			t.Errorf("no error for %s", k)
		}
	}
	if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), canary) {
		t.Errorf("err %v: want ErrInvalid and no value", err)
	}
	ok := Secret{Name: "x", Value: canary, EnvName: "X", FilePath: "~/x"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{ok.String(), ok.GoString()} {
		if strings.Contains(s, canary) {
			t.Errorf("String leaks the value: %s", s)
		}
	}
}

func TestSecretValidateBinaryValue(t *testing.T) {
	bin := "\xff\xfeA\x80\x00" + canary
	if err := (Secret{Name: "keytab", Value: bin, FilePath: "~/k"}).Validate(); err != nil {
		t.Fatalf("binary file secret refused: %v", err)
	}
	for _, s := range []Secret{
		{Name: "k", Value: bin, EnvName: "K"},
		{Name: "k", Value: bin, EnvName: "K", FilePath: "~/k"},
		{Name: "k", Value: canary + "\x00", EnvName: "K"},
	} {
		err := s.Validate()
		var es Errors
		if !errors.As(err, &es) || es.Fields()[FieldValue] == "" {
			t.Fatalf("%v: err = %v, want a value error", s, err)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("error leaks the value: %v", err)
		}
	}
}

// longPath is an absolute path of exactly n bytes (n > 2) whose names are
// at most 100 bytes.
func longPath(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteByte('/')
		b.WriteString(strings.Repeat("p", min(100, n-b.Len())))
	}
	return b.String()
}

func TestFilePathKey(t *testing.T) {
	for in, want := range map[string]string{
		"~/a":          "~/a",
		"~/a/./b":      "~/a/b",
		"~/a/c/../b":   "~/a/b",
		"~/a//b":       "~/a/b",
		"~//a":         "~/a",
		"~///..":       "~/..",
		"~/../x":       "~/../x",
		"~/a/..":       "~",
		"/x//y":        "/x/y",
		"/a/b/../../c": "/c",
		"/..":          "/",
	} {
		if got := FilePathKey(in); got != want {
			t.Errorf("FilePathKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilePathsNest(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"~/.npmrc", "~/.npmrc/extra", true},
		{"~/.npmrc/extra", "~/.npmrc", true},
		{"~/a/./b/c", "~/a/b", true},
		{"/etc/tool", "/etc/tool/conf.d/x", true},
		{"~/.npmrc", "~/.npmrc2", false},
		{"~/a", "~/a", false},  // the same file: a plain duplicate, not nesting
		{"~/a", "/a/b", false}, // the home is not known here
		{"/a/b", "/a/c", false},
	} {
		if got := FilePathsNest(tc.a, tc.b); got != tc.want {
			t.Errorf("FilePathsNest(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
