package inject

import (
	"errors"
	"strings"
	"testing"
)

func TestStoredSize(t *testing.T) {
	if StoredSize(10, false) != 10 || StoredSize(10, true) != 10+SealOverhead || SealOverhead != 33 {
		t.Fatal("StoredSize does not add the seal overhead exactly")
	}
}

func TestCheckLimits(t *testing.T) {
	l := DefaultLimits()
	n := func(k int, size int, env bool) []Usage {
		out := make([]Usage, k)
		for i := range out {
			out[i] = Usage{Name: "s", StoredBytes: size, HasEnv: env}
		}
		return out
	}
	tests := []struct {
		name  string
		after []Usage
		cap   string
		msg   string
	}{
		{"50 secrets ok", n(50, 10, false), "", ""},
		{"51 secrets", n(51, 10, false), CapSecrets, "cap is 50 secrets; this change would make it 51 (1 over)"},
		{"per-secret at cap", n(1, 24*1024, false), "", ""},
		{"per-secret over", n(1, 24*1024+33, false), CapSecretBytes, "(33 over)"},
		{"per-secret is checked before the total", n(8, 25*1024, false), CapSecretBytes, ""},
		{"total over", append(n(8, 24*1024, false), n(1, 12*1024, false)...), CapTotalBytes, "204800 bytes; this change would make it 208896 (4096 over)"},
		{"env at cap", n(2, 12*1024, true), "", ""},
		{"env over", append(n(2, 12*1024, true), Usage{StoredBytes: 1, HasEnv: true}), CapEnvBytes, "(1 over)"},
		{"file-only does not count to env", append(n(2, 12*1024, true), n(5, 20*1024, false)...), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.CheckLimits(tt.after)
			if tt.cap == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || le.Cap != tt.cap || !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want cap %s", err, tt.cap)
			}
			if !strings.Contains(err.Error(), tt.cap) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q must name the cap and contain %q", err, tt.msg)
			}
		})
	}
}

func TestEncryptionShrinksTheRawAllowance(t *testing.T) {
	// With encryption on, a raw 24 KiB value is over the per-secret cap of
	// stored bytes: caps count what the database stores (R9).
	l := DefaultLimits()
	raw := 24 * 1024
	if err := l.CheckLimits([]Usage{{StoredBytes: StoredSize(raw, false)}}); err != nil {
		t.Fatal(err)
	}
	err := l.CheckLimits([]Usage{{StoredBytes: StoredSize(raw, true)}})
	var le *LimitError
	if !errors.As(err, &le) || le.Want-le.Limit != SealOverhead {
		t.Fatalf("err = %v, want over by the seal overhead", err)
	}
}

func TestTallyAndField(t *testing.T) {
	us := []Usage{{StoredBytes: 10, HasEnv: true}, {StoredBytes: 7}, {StoredBytes: 5, HasEnv: true}}
	if got, want := Tally(us), (Totals{Secrets: 3, StoredBytes: 22, EnvBytes: 15}); got != want {
		t.Fatalf("Tally = %+v, want %+v", got, want)
	}
	for cap, field := range map[string]string{CapSecrets: FieldName, CapTotalBytes: FieldValue,
		CapEnvBytes: FieldEnvName, CapSecretBytes: FieldValue} {
		if got := (&LimitError{Cap: cap}).Field(); got != field {
			t.Errorf("cap %q: field %q, want %q", cap, got, field)
		}
	}
}
