package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that override the stored configuration, for scripts
// and tests.
const (
	envConfigDir = "COURIER_CONFIG_DIR"
	envURL       = "COURIER_URL"
	envToken     = "COURIER_SESSION_TOKEN"
)

// configFileName is the file inside the config directory.
const configFileName = "config.json"

var (
	// errNotLoggedIn is returned when a command needs a session and there is
	// none.
	errNotLoggedIn = errors.New("not logged in: run 'courier login URL' (or set COURIER_URL and COURIER_SESSION_TOKEN)")
	// errNoURL is returned when no control plane URL is known.
	errNoURL = errors.New("no control plane URL: run 'courier login URL' (or set COURIER_URL)")
)

// config is what `courier login` stores: where the control plane is and the
// session token for it. The token is a credential: the file is 0600 in a
// 0700 directory.
type config struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// environ looks up an environment variable (os.Getenv in the binary).
type environ func(string) string

// configDir returns COURIER_CONFIG_DIR, or os.UserConfigDir()/courier.
func configDir(getenv environ) (string, error) {
	if d := getenv(envConfigDir); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config directory (set %s): %w", envConfigDir, err)
	}
	return filepath.Join(base, "courier"), nil
}

// loadConfig reads the stored config (a missing file is an empty config) and
// applies COURIER_URL and COURIER_SESSION_TOKEN over it.
func loadConfig(getenv environ) (config, error) {
	var cfg config
	dir, err := configDir(getenv)
	if err != nil {
		return cfg, err
	}
	data, err := os.ReadFile(filepath.Join(dir, configFileName))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return cfg, fmt.Errorf("read config: %w", err)
	default:
		if err := json.Unmarshal(data, &cfg); err != nil {
			// Do not echo the file: it holds a token.
			return cfg, fmt.Errorf("config file %s is not valid JSON; run 'courier login' again", filepath.Join(dir, configFileName))
		}
	}
	if u := getenv(envURL); u != "" {
		cfg.URL = u
	}
	if t := getenv(envToken); t != "" {
		cfg.Token = t
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	return cfg, nil
}

// saveConfig writes cfg atomically: a 0600 temp file in the 0700 directory,
// then rename, so a reader never sees half a file and the token is never
// readable by others, even for a moment.
func saveConfig(getenv environ, cfg config) (string, error) {
	dir, err := configDir(getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create config directory: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	path := filepath.Join(dir, configFileName)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// loadStoredConfig reads the config file alone, without the environment
// overrides, for commands that rewrite it.
func loadStoredConfig(getenv environ) (config, error) {
	dir, err := configDir(getenv)
	if err != nil {
		return config{}, err
	}
	noOverride := func(k string) string {
		if k == envConfigDir {
			return dir
		}
		return ""
	}
	return loadConfig(noOverride)
}
