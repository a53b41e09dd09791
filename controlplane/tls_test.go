package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "courier-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.TLSCert, cfg.TLSKey = t.TempDir(), "127.0.0.1:0", certFile, keyFile
	srv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = srv.Close()
	}()
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
}

// TestBadStartConfigTouchesNoData: a TLS certificate that does not load, a
// listen address that cannot be bound and an audit log file that cannot
// be opened each stop New with an error that names the setting, before the
// database is created or migrated.
func TestBadStartConfigTouchesNoData(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, _, _ := writeSelfSigned(t, dir)
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"cert not PEM":     {func(c *Config) { c.TLSCert, c.TLSKey = bad, bad }, "--tls-cert"},
		"cert as the key":  {func(c *Config) { c.TLSCert, c.TLSKey = certFile, certFile }, "--tls-key"},
		"missing key file": {func(c *Config) { c.TLSCert, c.TLSKey = certFile, filepath.Join(dir, "none") }, "--tls-cert"},
		"bad port":         {func(c *Config) { c.Listen = "127.0.0.1:99999" }, "listen on 127.0.0.1:99999"},
		"audit file dir":   {func(c *Config) { c.AuditLogFile = filepath.Join(dir, "no", "such", "audit.jsonl") }, "--audit-log-file"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.Listen = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0"
			tc.mod(&cfg)
			srv, err := New(cfg, nil)
			if err == nil {
				_ = srv.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
			if tc.want != "--audit-log-file" {
				if _, err := os.Stat(filepath.Join(cfg.DataDir, "courier.db")); !os.IsNotExist(err) {
					t.Fatalf("the database was created or opened first: %v", err)
				}
			}
		})
	}
}

// TestOneServerPerSQLiteDataDir: a second server on the same SQLite data
// directory is refused, naming the holder, since neither would hear of the
// other's changes; once the first closes, the directory is free again.
// SQLite only: replicas share PostgreSQL by design.
func TestOneServerPerSQLiteDataDir(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.BcryptCost = "127.0.0.1:0", t.TempDir(), 4
	first, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(cfg, nil)
	if err == nil {
		_ = second.Close()
		_ = first.Close()
		t.Fatal("a second server on the same SQLite data directory was allowed")
	}
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("err = %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	_ = again.Close()
}
