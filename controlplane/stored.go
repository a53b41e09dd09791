package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/courierhq/courier/controlplane/store"
)

// errSealedNoKey: a value is recorded as sealed but the server has no key.
// Delivering its bytes would hand the agent ciphertext as if it were the
// value, so the read fails instead.
var errSealedNoKey = errors.New("value is sealed but no encryption key is configured")

// valueFormat is the format of values this server seals.
func (a *api) valueFormat() store.ValueFormat { return formatOf(a.sealer) }

func formatOf(s Sealer) store.ValueFormat {
	if s.Encrypted() {
		return store.FormatSealed
	}
	return store.FormatPlain
}

// openStored returns the raw value of a stored secret, by its recorded
// format:
//
//  1. plain: the stored bytes, whatever key is configured (rows written
//     before a key was added stay readable until `courier server reseal`
//     seals them);
//  2. sealed: opened with the keyring; without one, errSealedNoKey;
//  3. unknown (written before formats were recorded): with a key, bytes that
//     cannot be a sealed value are plain and the rest are opened; without a
//     key, the stored bytes, as before.
func openStored(s Sealer, sec store.Secret) ([]byte, error) {
	switch sec.Format {
	case store.FormatPlain:
		return append([]byte{}, sec.Value...), nil
	case store.FormatSealed:
		if !s.Encrypted() {
			return nil, errSealedNoKey
		}
	default:
		if s.Encrypted() && !looksSealed(sec.Value) {
			return append([]byte{}, sec.Value...), nil
		}
	}
	return s.Open(sec.Value, sealAD(sec.UserID, sec.Name))
}

// warnValueFormats tells the operator, once at start, about stored values
// that do not match the configuration: plain values while a key is
// configured (run `courier server reseal`), sealed values without a key
// (agents will not get them).
func (s *Server) warnValueFormats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	counts, err := s.store.CountSecretsByFormat(ctx)
	if err != nil {
		s.log.Error("could not count stored values by format", zap.Error(err))
		return
	}
	if s.sealer.Encrypted() {
		if n := counts[store.FormatPlain] + counts[store.FormatUnknown]; n > 0 {
			s.log.Warn("some secret values may be stored unencrypted although a key is configured; "+
				"run `courier server reseal` to seal them", zap.Int("plain", counts[store.FormatPlain]),
				zap.Int("format_unknown", counts[store.FormatUnknown]))
		}
		return
	}
	if n := counts[store.FormatSealed]; n > 0 {
		s.log.Warn("some secret values are sealed but no encryption key is configured: agents will not get them; "+
			"set --encryption-key-file, or run `courier server unseal` with the keys", zap.Int("sealed", n))
	}
}

// errKeyOpensNothing: sealed values are stored and the configured key
// opens none of those tried.
var errKeyOpensNothing = errors.New("the encryption key opens none of the stored sealed values")

// keyCheckSample bounds the sealed values checkKey tries, and keyCheckScan
// the rows it reads to find them.
const (
	keyCheckSample = 20
	keyCheckScan   = 2000
)

// checkKey tries the configured key on a sample of the stored sealed
// values. A key that opens none of them (a wrong or truncated key file) is
// errKeyOpensNothing: started anyway, the server would hand every agent
// an empty set and every workspace would boot "ready" without its
// secrets. Some failing among others opening is logged (values sealed
// with a key since dropped from the ring). Without a key, or with nothing
// sealed, it checks nothing.
func checkKey(ctx context.Context, st store.Store, s Sealer, log *zap.Logger) error {
	if !s.Encrypted() {
		return nil
	}
	tried, opened, after := 0, 0, ""
	for scanned := 0; tried < keyCheckSample && scanned < keyCheckScan; {
		batch, err := st.ScanSecrets(ctx, after, 200)
		if err != nil {
			return fmt.Errorf("checking the encryption key against stored values: %w", err)
		}
		for _, sec := range batch {
			if sec.Format != store.FormatSealed || tried >= keyCheckSample {
				continue
			}
			tried++
			if _, err := openStored(s, sec); err == nil {
				opened++
			}
		}
		scanned += len(batch)
		if len(batch) < 200 {
			break
		}
		after = batch[len(batch)-1].ID
	}
	switch {
	case tried > 0 && opened == 0:
		return fmt.Errorf("%w (0 of %d tried): is --encryption-key-file the key they were sealed with? "+
			"Started with it, the server would deliver no secret to any workspace", errKeyOpensNothing, tried)
	case opened < tried:
		log.Error("the encryption key does not open some stored values: agents will not get those secrets; "+
			"add the key they were sealed with to the key file", zap.Int("tried", tried), zap.Int("not_opened", tried-opened))
	}
	return nil
}
