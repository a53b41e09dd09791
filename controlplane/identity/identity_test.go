package identity

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/controlplane/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseLifetime(t *testing.T) {
	const max = 90 * Day
	for _, c := range []struct {
		in   string
		want time.Duration
		err  error
	}{
		{"30d", 30 * Day, nil},
		{"90d", 90 * Day, nil},
		{"12h", 12 * time.Hour, nil},
		{"90m", 90 * time.Minute, nil},
		{"1d12h", 36 * time.Hour, nil},
		{"1h30m", 90 * time.Minute, nil},
		{" 30d ", 30 * Day, nil},
		{"1m", time.Minute, nil},
		{"2160h", max, nil},
		{"", 0, ErrBadLifetime},
		{"30", 0, ErrBadLifetime},
		{"1e3", 0, ErrBadLifetime},
		{"0d", 0, ErrBadLifetime},
		{"0h", 0, ErrBadLifetime},
		{"30s", 0, ErrBadLifetime},
		{"59s", 0, ErrBadLifetime},
		{"-1d", 0, ErrBadLifetime},
		{"-1h", 0, ErrBadLifetime},
		{"+1h", 0, ErrBadLifetime},
		{"1d-1h", 0, ErrBadLifetime},
		{"1.5d", 0, ErrBadLifetime},
		{"d", 0, ErrBadLifetime},
		{"1dd", 0, ErrBadLifetime},
		{"30D", 0, ErrBadLifetime},
		{"thirty days", 0, ErrBadLifetime},
		{"1d\x00", 0, ErrBadLifetime},
		{"99999999999999999999d", 0, ErrBadLifetime},
		{"106752d", 0, ErrBadLifetime}, // over the int64 nanoseconds of a Duration
		{"106751d23h47m17s", 0, ErrBadLifetime},
		{"106751d", 0, ErrLifetimeTooLong},
		{"91d", 0, ErrLifetimeTooLong},
		{"2160h1m", 0, ErrLifetimeTooLong},
		{"90d1m", 0, ErrLifetimeTooLong},
		{"100000h", 0, ErrLifetimeTooLong},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseLifetime(c.in, max)
			if !errors.Is(err, c.err) || (err == nil && got != c.want) {
				t.Fatalf("ParseLifetime(%q) = %v, %v; want %v, %v", c.in, got, err, c.want, c.err)
			}
			if err != nil && len(err.Error()) > 200 {
				t.Errorf("overlong error %q", err)
			}
		})
	}
	if d, err := ParseLifetime("1000d", 0); err != nil || d != 1000*Day {
		t.Errorf("no max: %v %v", d, err)
	}
}

func TestFormatLifetime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * Day: "30d", 12 * time.Hour: "12h0m0s", 36 * time.Hour: "1d12h0m0s", time.Minute: "1m0s",
	} {
		if got := FormatLifetime(d); got != want {
			t.Errorf("FormatLifetime(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseLifetime(FormatLifetime(d), 0); err != nil || back != d {
			t.Errorf("round trip of %v: %v %v", d, back, err)
		}
	}
}

func TestMint(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		tok, hash, err := Mint()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != TokenLen || !LooksLikeToken(tok) {
			t.Fatalf("token %q has the wrong shape", tok)
		}
		if sum := sha256.Sum256([]byte(tok)); string(hash) != string(sum[:]) || string(Hash(tok)) != string(sum[:]) {
			t.Fatal("hash is not the SHA-256 of the token")
		}
		if seen[tok] {
			t.Fatal("a token repeated")
		}
		seen[tok] = true
		if got := TokenPattern.FindString("log line: token=" + tok + " end"); got != tok {
			t.Fatalf("TokenPattern found %q", got)
		}
	}
	for _, s := range []string{"", TokenPrefix, "courier_pat_short", "x" + strings.Repeat("a", TokenLen-1),
		TokenPrefix + strings.Repeat("a", 42) + "!", TokenPrefix + strings.Repeat("a", 44)} {
		if LooksLikeToken(s) {
			t.Errorf("LooksLikeToken(%q)", s)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"ci", "deploy-bot", "Ünïcode ok", strings.Repeat("n", MaxNameBytes), "a.b_c"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("n", MaxNameBytes+1), " ci", "ci ", "a/b", "a?b", "a#b", ".", "..",
		"a\x00b", "a\nb", "a\x7fb", "a\u0085b", "\xff", "../etc/passwd"} {
		err := ValidateName(bad)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) = %v, want ErrBadName", bad, err)
		}
		if err != nil && len(bad) > 2 && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the name: %v", err)
		}
	}
}

func TestNew(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	p := Policy{MaxLifetime: 90 * Day}
	tok, secret, err := New("u1", Request{Name: "ci"}, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != store.ScopeWrite || !tok.ExpiresAt.Equal(now.Add(30*Day)) || tok.UserID != "u1" || tok.Name != "ci" ||
		!tok.CreatedAt.Equal(now) || string(tok.TokenHash) != string(Hash(secret)) || !LooksLikeToken(secret) {
		t.Fatalf("defaults: %+v", tok)
	}
	if strings.Contains(tok.String(), secret) {
		t.Fatal("String shows the token")
	}
	tok, _, err = New("u1", Request{Name: "r", Scope: "read", Lifetime: "12h"}, p, now)
	if err != nil || tok.Scope != store.ScopeRead || !tok.ExpiresAt.Equal(now.Add(12*time.Hour)) {
		t.Fatalf("read 12h: %+v %v", tok, err)
	}
	// The default lifetime shrinks to a smaller maximum.
	tok, _, err = New("u1", Request{Name: "short"}, Policy{MaxLifetime: 7 * Day}, now)
	if err != nil || !tok.ExpiresAt.Equal(now.Add(7*Day)) {
		t.Fatalf("default under a 7d max: %+v %v", tok, err)
	}
	for _, c := range []struct {
		name  string
		req   Request
		p     Policy
		field string
		err   error
	}{
		{"bad name", Request{Name: "a/b"}, p, "name", ErrBadName},
		{"bad scope", Request{Name: "x", Scope: "admin"}, p, "scope", ErrBadScope},
		{"scope case", Request{Name: "x", Scope: "READ"}, p, "scope", ErrBadScope},
		{"bad lifetime", Request{Name: "x", Lifetime: "forever"}, p, "lifetime", ErrBadLifetime},
		{"over max", Request{Name: "x", Lifetime: "91d"}, p, "lifetime", ErrLifetimeTooLong},
		{"outlives its creator", Request{Name: "x", Lifetime: "2d"}, Policy{MaxLifetime: 90 * Day, NotAfter: now.Add(Day)}, "lifetime", ErrLifetimeTooLong},
		{"default outlives its creator", Request{Name: "x"}, Policy{MaxLifetime: 90 * Day, NotAfter: now.Add(Day)}, "lifetime", ErrLifetimeTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, secret, err := New("u1", c.req, c.p, now)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, c.err) || secret != "" {
				t.Fatalf("err %v (field %v), want %s: %v", err, fe, c.field, c.err)
			}
		})
	}
	if _, _, err := New("u1", Request{Name: "x", Lifetime: "1d"}, Policy{MaxLifetime: 90 * Day, NotAfter: now.Add(Day)}, now); err != nil {
		t.Fatalf("as long as its creator: %v", err)
	}
}
