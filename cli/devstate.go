package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/courierhq/courier/client"
)

const (
	devUser      = "dev"
	devStateFile = "dev.json"
)

// devState is what `courier dev` keeps between runs, mode 0600: the
// password and session token of the dev user and the workspace's agent
// token (shown once by the API, so it must be kept).
type devState struct {
	Password     string `json:"password"`
	SessionToken string `json:"session_token"`
	AgentToken   string `json:"agent_token"`
}

// devTemplate is the dev workspace's template: an env var, a startup script
// and an app, so every part of the path can be seen working.
var devTemplate = client.Template{
	Env: map[string]string{"GREETING": "hello from the template", "EDITOR_HINT": "courier dev"},
	Scripts: []client.Script{{Name: "hello", TimeoutSeconds: 30,
		Script: `echo "startup script ran at $(date -u +%FT%TZ); secret files present:" >> ~/startup.log; ls -A ~/.config/dev 2>/dev/null >> ~/startup.log; true`}},
	Apps: []client.App{{Slug: "heartbeat", Command: `while true; do date -u +%FT%TZ > ~/.heartbeat; sleep 30; done`}},
}

// bootstrapDev makes sure the dev user and workspace exist and returns the
// tokens, creating them on the first run and reusing them after.
func bootstrapDev(ctx context.Context, url, dir string) (devState, error) {
	path := filepath.Join(dir, devStateFile)
	anon, err := client.New(client.Config{URL: url})
	if err != nil {
		return devState{}, err
	}
	var st devState
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return devState{}, fmt.Errorf("%w: %s is malformed; delete the state directory to start over", errDevState, path)
		}
		if _, err := anon.WithToken(st.SessionToken).User(ctx, "me"); err != nil {
			tok, lerr := anon.Login(ctx, client.LoginRequest{Username: devUser, Password: st.Password})
			if lerr != nil {
				return devState{}, fmt.Errorf("logging in again as %s: %w", devUser, lerr)
			}
			st.SessionToken = tok
			if err := writeDevState(path, st); err != nil {
				return devState{}, err
			}
		}
		return st, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return devState{}, err
	}

	st.Password = randomString(18)
	if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: devUser, Email: "dev@courier.localhost", Password: st.Password}); err != nil {
		return devState{}, fmt.Errorf("creating the dev user (is %s a fresh state directory?): %w", dir, err)
	}
	if st.SessionToken, err = anon.Login(ctx, client.LoginRequest{Username: devUser, Password: st.Password}); err != nil {
		return devState{}, err
	}
	ws, err := anon.WithToken(st.SessionToken).CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: devUser, Template: devTemplate})
	if err != nil {
		return devState{}, err
	}
	st.AgentToken = ws.AgentToken
	return st, writeDevState(path, st)
}

func writeDevState(path string, st devState) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
