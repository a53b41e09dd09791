package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/courierhq/courier/client"
)

// simUser is one user of the fleet: it owns AgentsPerUser workspaces and
// the secrets they receive.
type simUser struct {
	name     string
	password string
	api      *client.Client // logged in as this user
	// mu guards secrets, the names of this user's secrets.
	mu      sync.Mutex
	secrets []string
}

// fleet is what setup created.
type fleet struct {
	admin  *client.Client
	users  []*simUser
	agents []*simAgent
	// transport carries every API call; its idle connections are closed
	// at cleanup.
	transport *http.Transport
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newAPIClient returns a client of the control plane's REST API that keeps
// enough idle connections for the setup's workers.
func newAPIClient(tr *http.Transport, url, token string) (*client.Client, error) {
	return client.New(client.Config{URL: url, Token: token, HTTPClient: &http.Client{Timeout: 60 * time.Second, Transport: tr}})
}

// setup creates, through the REST API, the admin (first user) unless
// given, the users with their secrets, and one workspace per agent.
func setup(ctx context.Context, cfg Config, url string, progress func(string)) (*fleet, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	anon, err := newAPIClient(tr, url, "")
	if err != nil {
		return nil, err
	}
	adminName, adminPass := cfg.AdminUser, cfg.AdminPassword
	if adminName == "" {
		adminName, adminPass = "load-admin", randomHex(16)
		if _, err := anon.CreateFirstUser(ctx, client.CreateUserRequest{Username: adminName,
			Email: adminName + "@load.invalid", Password: adminPass}); err != nil {
			return nil, fmt.Errorf("creating the admin: %w", err)
		}
	}
	tok, err := anon.Login(ctx, client.LoginRequest{Username: adminName, Password: adminPass})
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	f := &fleet{admin: anon.WithToken(tok), transport: tr}
	run := randomHex(3) // keeps names unique on a shared control plane
	nUsers := (cfg.Agents + cfg.AgentsPerUser - 1) / cfg.AgentsPerUser
	f.users = make([]*simUser, nUsers)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.SetupWorkers)
	for i := range f.users {
		g.Go(func() error {
			u := &simUser{name: fmt.Sprintf("load-%s-u%05d", run, i), password: randomHex(16)}
			if _, err := f.admin.CreateUser(gctx, client.CreateUserRequest{Username: u.name,
				Email: u.name + "@load.invalid", Password: u.password}); err != nil {
				return fmt.Errorf("creating user %s: %w", u.name, err)
			}
			tok, err := anon.Login(gctx, client.LoginRequest{Username: u.name, Password: u.password})
			if err != nil {
				return fmt.Errorf("login %s: %w", u.name, err)
			}
			u.api = anon.WithToken(tok)
			for j := range cfg.SecretsPerUser {
				if err := u.createSecret(gctx, j); err != nil {
					return err
				}
			}
			f.users[i] = u
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("created %d users", nUsers))
	f.agents = make([]*simAgent, cfg.Agents)
	var mu sync.Mutex
	done := 0
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(cfg.SetupWorkers)
	for i := range f.agents {
		g.Go(func() error {
			u := f.users[i/cfg.AgentsPerUser]
			name := fmt.Sprintf("load-%s-w%05d", run, i)
			w, err := f.admin.CreateWorkspace(gctx, client.CreateWorkspaceRequest{Name: name, Owner: u.name,
				Template: client.Template{Env: map[string]string{"LOAD": "1"}}})
			if err != nil {
				return fmt.Errorf("creating workspace %s: %w", name, err)
			}
			a, err := newSimAgent(name, w.AgentToken, u)
			if err != nil {
				return err
			}
			f.agents[i] = a
			mu.Lock()
			done++
			if done%1000 == 0 {
				progress(fmt.Sprintf("created %d/%d workspaces", done, cfg.Agents))
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return f, nil
}

// createSecret creates the user's j-th secret: even ones as files, odd
// ones as env variables.
func (u *simUser) createSecret(ctx context.Context, j int) error {
	name := fmt.Sprintf("load-%d-%s", j, randomHex(2))
	req := client.CreateSecretRequest{Name: name, Value: "value-" + randomHex(32)}
	if j%2 == 0 {
		req.FilePath = fmt.Sprintf("~/.config/load/%s", name)
	} else {
		req.EnvName = fmt.Sprintf("LOAD_%d_%s", j, randomHex(2))
	}
	if _, err := u.api.CreateSecret(ctx, "me", req); err != nil {
		return fmt.Errorf("creating a secret of %s: %w", u.name, err)
	}
	u.mu.Lock()
	u.secrets = append(u.secrets, name)
	u.mu.Unlock()
	return nil
}

// cleanup deletes every secret the run created. Users and workspaces stay:
// the API has no delete for them (a control plane the tool started is
// removed with its data directory instead).
func (f *fleet) cleanup(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, u := range f.users {
		if u == nil || u.api == nil {
			continue
		}
		u.mu.Lock()
		names := append([]string(nil), u.secrets...)
		u.mu.Unlock()
		for _, n := range names {
			g.Go(func() error { return u.api.DeleteSecret(gctx, "me", n) })
		}
	}
	err := g.Wait()
	f.transport.CloseIdleConnections()
	return err
}
