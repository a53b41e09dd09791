// Package seal encrypts secret values at rest with AES-256-GCM. A Keyring
// holds one or more keys: the first seals, every key opens, so keys can be
// rotated by putting a new key first and keeping the old ones until every
// value has been rewritten.
//
// Sealed layout (exactly inject.SealOverhead bytes longer than the value):
//
//	version (1 byte, 1) | key id (4 bytes: SHA-256(key)[:4]) | nonce (12) | ciphertext+tag (len+16)
//
// The additional data binds a sealed value to where it is stored (AD: the
// owner's ID and the secret's name), so a value copied into another row does
// not open.
//
// The layout alone cannot tell a plain value from a sealed one: any bytes
// may be a plain value, including bytes that start with version 1. The
// store therefore records each value's format beside it; LooksSealed only
// rules out values that cannot be sealed (too short or another version),
// which is what a reader needs for rows written before formats were
// recorded.
package seal

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

var (
	// ErrKeyFile is wrapped by every refusal to load a key file. The error
	// never contains key material.
	ErrKeyFile = errors.New("invalid encryption key file")
	// ErrUnknownKey means a value was sealed with a key not in the keyring.
	ErrUnknownKey = errors.New("value sealed with a key that is not configured")
	// ErrCorrupt means a sealed value is malformed or fails authentication.
	ErrCorrupt = errors.New("sealed value is corrupt or was tampered with")
)

const (
	version  = 1
	idLen    = 4
	nonceLen = 12
	// KeyLen is the length of an AES-256 key.
	KeyLen = 32
)

// Sealer seals and opens values. Plain and *Keyring implement it.
type Sealer interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(stored, ad []byte) ([]byte, error)
	// Encrypted reports whether Seal encrypts (and so adds
	// inject.SealOverhead bytes).
	Encrypted() bool
}

// Plain stores values as they are: no key configured.
type Plain struct{}

// Seal returns a copy of plain.
func (Plain) Seal(plain, _ []byte) ([]byte, error) { return append([]byte{}, plain...), nil }

// Open returns a copy of stored.
func (Plain) Open(stored, _ []byte) ([]byte, error) { return append([]byte{}, stored...), nil }

// Encrypted is false.
func (Plain) Encrypted() bool { return false }

type key struct {
	id   [idLen]byte
	aead cipher.AEAD
}

// Keyring seals with its first key and opens with any. Safe for concurrent use.
type Keyring struct {
	keys []key
}

// NewKeyring builds a keyring from raw 32-byte keys, the sealing key first.
func NewKeyring(raw ...[]byte) (*Keyring, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeyFile)
	}
	kr := &Keyring{}
	for i, r := range raw {
		if len(r) != KeyLen {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want %d", ErrKeyFile, i+1, len(r), KeyLen)
		}
		block, err := aes.NewCipher(r)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(r)
		var k key
		copy(k.id[:], sum[:idLen])
		k.aead = aead
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// LoadKeyFile reads a key file: one base64-encoded 32-byte key per line, the
// sealing key first; blank lines and lines starting with '#' are ignored.
func LoadKeyFile(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	var raw [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d is not base64", ErrKeyFile, path, line)
		}
		if len(k) != KeyLen {
			return nil, fmt.Errorf("%w: %s line %d decodes to %d bytes, want %d", ErrKeyFile, path, line, len(k), KeyLen)
		}
		raw = append(raw, k)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: %s holds no key", ErrKeyFile, path)
	}
	return NewKeyring(raw...)
}

// GenerateKeyFile writes a new key file with one random key, mode 0600. It
// refuses to overwrite an existing file.
func GenerateKeyFile(path string) error {
	k := make([]byte, KeyLen)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "# Courier encryption key: the first key seals, all keys open.\n%s\n", base64.StdEncoding.EncodeToString(k))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Encrypted is true.
func (*Keyring) Encrypted() bool { return true }

// AD is the additional data a secret's value is sealed with: its owner's ID
// and its name.
func AD(userID, name string) []byte { return []byte(userID + "\x00" + name) }

// LooksSealed reports whether stored has the sealed layout (version 1 and at
// least the overhead). False means stored is certainly not a sealed value;
// true means it may be one (or a plain value that happens to look alike).
func LooksSealed(stored []byte) bool {
	return len(stored) >= 1+idLen+nonceLen+16 && stored[0] == version
}

// Current reports whether stored has the sealed layout and names the
// keyring's first (sealing) key. It does not authenticate; Open does.
func (kr *Keyring) Current(stored []byte) bool {
	return LooksSealed(stored) && bytes.Equal(stored[1:1+idLen], kr.keys[0].id[:])
}

// Seal encrypts plain with the first key, binding ad.
func (kr *Keyring) Seal(plain, ad []byte) ([]byte, error) {
	k := kr.keys[0]
	out := make([]byte, 1+idLen+nonceLen, 1+idLen+nonceLen+len(plain)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	nonce := out[1+idLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, nonce, plain, ad), nil
}

// Open decrypts a value sealed by any key of the keyring with the same ad.
func (kr *Keyring) Open(stored, ad []byte) ([]byte, error) {
	if len(stored) < 1+idLen+nonceLen+16 || stored[0] != version {
		return nil, ErrCorrupt
	}
	id := stored[1 : 1+idLen]
	for _, k := range kr.keys {
		if !bytes.Equal(k.id[:], id) {
			continue
		}
		nonce := stored[1+idLen : 1+idLen+nonceLen]
		plain, err := k.aead.Open(nil, nonce, stored[1+idLen+nonceLen:], ad)
		if err != nil {
			return nil, ErrCorrupt
		}
		return plain, nil
	}
	return nil, ErrUnknownKey
}
