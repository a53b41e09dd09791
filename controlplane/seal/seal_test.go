package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courierhq/courier/inject"
)

const canary = "CANARY-seal-0b7e"

func rnd(t *testing.T) []byte {
	k := make([]byte, KeyLen)
	_, _ = rand.Read(k)
	return k
}

func TestRoundTripAndLayout(t *testing.T) {
	kr, err := NewKeyring(rnd(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 100, 24 * 1024} {
		plain := bytes.Repeat([]byte("x"), n)
		s, err := kr.Seal(plain, []byte("user/name"))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != inject.StoredSize(n, true) {
			t.Fatalf("sealed %d bytes into %d, want %d", n, len(s), inject.StoredSize(n, true))
		}
		got, err := kr.Open(s, []byte("user/name"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open: %v", err)
		}
	}
	a, _ := kr.Seal([]byte(canary), nil)
	b, _ := kr.Seal([]byte(canary), nil)
	if bytes.Equal(a, b) || bytes.Contains(a, []byte(canary)) {
		t.Fatal("sealing is deterministic or leaves the plaintext visible")
	}
}

func TestTamperAndWrongAD(t *testing.T) {
	kr, _ := NewKeyring(rnd(t))
	s, _ := kr.Seal([]byte(canary), []byte("alice/token"))
	if _, err := kr.Open(s, []byte("bob/token")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong ad: %v", err)
	}
	for i := range []int{0, 5, 20, len(s) - 1} {
		bad := append([]byte{}, s...)
		bad[[]int{0, 5, 20, len(s) - 1}[i]] ^= 1
		_, err := kr.Open(bad, []byte("alice/token"))
		if err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatal("error leaks plaintext")
		}
	}
	if _, err := kr.Open([]byte("short"), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldK, newK := rnd(t), rnd(t)
	oldRing, _ := NewKeyring(oldK)
	sealedOld, _ := oldRing.Seal([]byte(canary), nil)
	rotated, _ := NewKeyring(newK, oldK)
	if got, err := rotated.Open(sealedOld, nil); err != nil || string(got) != canary {
		t.Fatalf("old value after rotation: %v", err)
	}
	sealedNew, _ := rotated.Seal([]byte(canary), nil)
	if bytes.Equal(sealedNew[1:5], sealedOld[1:5]) {
		t.Fatal("new seals still use the old key id")
	}
	if _, err := oldRing.Open(sealedNew, nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys")
	k1, k2 := rnd(t), rnd(t)
	body := "# comment\n\n" + base64.StdEncoding.EncodeToString(k1) + "\n" + base64.StdEncoding.EncodeToString(k2) + "\n"
	_ = os.WriteFile(good, []byte(body), 0o600)
	kr, err := LoadKeyFile(good)
	if err != nil || len(kr.keys) != 2 {
		t.Fatalf("load: %v", err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("0123456789"))
	for name, content := range map[string]string{
		"short":   short + "\n",
		"notb64":  "%%%not-base64%%%\n",
		"empty":   "# only a comment\n",
		"missing": "",
	} {
		p := filepath.Join(dir, name)
		if name != "missing" {
			_ = os.WriteFile(p, []byte(content), 0o600)
		}
		_, err := LoadKeyFile(p)
		if !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: err = %v", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), short) || strings.Contains(err.Error(), "not-base64")) {
			t.Errorf("%s: error shows key material: %v", name, err)
		}
	}
	gen := filepath.Join(dir, "gen")
	if err := GenerateKeyFile(gen); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(gen); st.Mode().Perm() != 0o600 {
		t.Errorf("generated key file mode %v", st.Mode().Perm())
	}
	if _, err := LoadKeyFile(gen); err != nil {
		t.Fatalf("generated file does not load: %v", err)
	}
	if err := GenerateKeyFile(gen); err == nil {
		t.Error("GenerateKeyFile overwrote an existing file")
	}
}

func TestPlain(t *testing.T) {
	p := Plain{}
	s, _ := p.Seal([]byte("v"), nil)
	o, _ := p.Open(s, nil)
	if p.Encrypted() || string(o) != "v" || len(s) != inject.StoredSize(1, false) {
		t.Fatal("Plain is not the identity")
	}
}

func TestLooksSealedAndCurrent(t *testing.T) {
	k1, k2 := rnd(t), rnd(t)
	old, _ := NewKeyring(k2)
	both, _ := NewKeyring(k1, k2)
	underOld, _ := old.Seal([]byte(canary), AD("u", "n"))
	underNew, _ := both.Seal([]byte(canary), AD("u", "n"))
	empty, _ := both.Seal(nil, AD("u", "n"))
	for name, c := range map[string]struct {
		v              []byte
		looks, current bool
	}{
		"sealed under the first key":  {underNew, true, true},
		"sealed under an older key":   {underOld, true, false},
		"sealed empty value":          {empty, true, true},
		"plain text":                  {[]byte(canary), false, false},
		"one byte short of a seal":    {underNew[:len(empty)-1], false, false},
		"plain bytes that look alike": {append([]byte{1}, bytes.Repeat([]byte{7}, 40)...), true, false},
	} {
		if LooksSealed(c.v) != c.looks || both.Current(c.v) != c.current {
			t.Errorf("%s: LooksSealed %t Current %t, want %t %t", name, LooksSealed(c.v), both.Current(c.v), c.looks, c.current)
		}
	}
	if string(AD("u", "n")) == string(AD("u\x00n", "")) || string(AD("a", "bc")) == string(AD("ab", "c")) {
		t.Error("additional data of different rows collide")
	}
}
