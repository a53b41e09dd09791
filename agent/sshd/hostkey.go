package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/afero"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/internal/ownerfile"
)

// LoadOrCreateHostKey returns the host key stored at path on fsys, creating
// an ed25519 key there (mode 0600, parent directories 0700) when there is
// none, so clients see the same host key across agent restarts. A file that
// exists but does not hold a private key is an error wrapping ErrHostKey; it
// is never overwritten — except an empty one, which an older agent killed
// between creating and writing it left, and which holds nothing to lose.
//
// The new key is written to a temporary file beside path, synced, and
// renamed into place, so an agent killed at any moment leaves either no key
// or a whole one: never a file that would stop every later start.
func LoadOrCreateHostKey(fsys afero.Fs, path string) (gossh.Signer, error) {
	data, err := afero.ReadFile(fsys, path)
	if err == nil && len(data) == 0 {
		err = fs.ErrNotExist // a file created but never written: make one
	}
	if err == nil {
		signer, perr := gossh.ParsePrivateKey(data)
		if perr != nil {
			return nil, fmt.Errorf("%w: %s does not hold a usable private key", ErrHostKey, path)
		}
		return signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: read %s: %w", ErrHostKey, path, err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrHostKey, err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "courier-agent host key")
	if err != nil {
		return nil, fmt.Errorf("%w: marshal: %w", ErrHostKey, err)
	}
	if err := fsys.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%w: create directory for %s: %w", ErrHostKey, path, err)
	}
	tmp := path + ".courier-tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrHostKey, tmp, err)
	}
	_, werr := f.Write(pem.EncodeToMemory(block))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = fsys.Chmod(tmp, 0o600) // umask may have narrowed or widened it
	}
	if _, osFs := fsys.(*afero.OsFs); osFs && werr == nil {
		werr = ownerfile.Restrict(tmp) // Windows: an owner-only DACL
	}
	if werr == nil {
		werr = fsys.Rename(tmp, path)
	}
	if werr != nil {
		_ = fsys.Remove(tmp) // ours, and never renamed
		return nil, fmt.Errorf("%w: write %s: %w", ErrHostKey, path, werr)
	}
	if _, osFs := fsys.(*afero.OsFs); osFs { // make the rename durable
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return gossh.NewSignerFromKey(priv)
}
