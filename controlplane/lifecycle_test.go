package controlplane

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.DataDir = "/tmp/x"
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	onPostgres := valid
	onPostgres.DataDir, onPostgres.PostgresURL = "", "postgres://courier@db/courier"
	if err := onPostgres.Validate(); err != nil {
		t.Fatalf("a PostgreSQL URL without a data dir: %v", err)
	}
	for _, c := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"no listen", func(c *Config) { c.Listen = "" }},
		{"no data dir", func(c *Config) { c.DataDir = "" }},
		{"cert without key", func(c *Config) { c.TLSCert = "cert.pem" }},
		{"key without cert", func(c *Config) { c.TLSKey = "key.pem" }},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }},
		{"zero limit", func(c *Config) { c.Limits.MaxSecrets = 0 }},
		{"negative session", func(c *Config) { c.SessionLifetime = -time.Second }},
		{"zero body", func(c *Config) { c.MaxBodyBytes = 0 }},
		{"bcrypt cost", func(c *Config) { c.BcryptCost = 99 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid
			c.mutate(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err %v, want ErrInvalidConfig", err)
			}
			if _, err := New(cfg, nil); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New err %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewFailures(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.EncryptionKeyFile = filepath.Join(t.TempDir(), "missing.key")
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("a missing key file was accepted")
	}
	cfg.EncryptionKeyFile = ""
	cfg.Listen = "256.0.0.1:99999"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatal("a bad listen address was accepted")
	}
}

func TestRunCloseLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.BcryptCost = bcrypt.MinCost
	srv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	// The listener is bound by New, so this request waits for Run to serve.
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	res, err := hc.Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := srv.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := hc.Get(srv.URL() + "/healthz"); err == nil {
		t.Fatal("server still answers after Close")
	}
}
