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
// is never overwritten.
func LoadOrCreateHostKey(fsys afero.Fs, path string) (gossh.Signer, error) {
	data, err := afero.ReadFile(fsys, path)
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
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrHostKey, path, err)
	}
	_, werr := f.Write(pem.EncodeToMemory(block))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = fsys.Chmod(path, 0o600) // umask may have narrowed or widened it
	}
	if _, osFs := fsys.(*afero.OsFs); osFs && werr == nil {
		werr = ownerfile.Restrict(path) // Windows: an owner-only DACL
	}
	if werr != nil {
		_ = fsys.Remove(path) // we created it just now
		return nil, fmt.Errorf("%w: write %s: %w", ErrHostKey, path, werr)
	}
	return gossh.NewSignerFromKey(priv)
}
