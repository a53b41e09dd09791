package loadtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

// SSHResult is the SSH fan-out: sessions through the control plane's SSH
// proxy to agents across the fleet, each running `true`.
type SSHResult struct {
	Sessions    int            `json:"sessions"`
	Concurrency int            `json:"concurrency"`
	Session     Dist           `json:"session"` // dial + handshake + exec + exit
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	Secs        float64        `json:"seconds"`
}

// sshFanOut runs SSHSessions sessions, SSHConcurrency at once, spread over
// the fleet's workspaces, each as the workspace's owner.
func (r *Runner) sshFanOut(ctx context.Context) (SSHResult, error) {
	cfg := r.cfg
	res := SSHResult{Sessions: cfg.SSHSessions, Concurrency: cfg.SSHConcurrency, ErrorKinds: map[string]int{}}
	r.say(fmt.Sprintf("ssh: %d sessions, %d at once", cfg.SSHSessions, cfg.SSHConcurrency))
	rec := &recorder{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.SSHConcurrency)
	t := time.Now()
	step := max(1, len(r.fleet.agents)/max(1, cfg.SSHSessions))
	for i := range cfg.SSHSessions {
		a := r.fleet.agents[(i*step)%len(r.fleet.agents)]
		g.Go(func() error {
			t := time.Now()
			kind, err := sshTrue(gctx, a)
			if err != nil {
				mu.Lock()
				res.Errors++
				res.ErrorKinds[kind]++
				mu.Unlock()
				return nil
			}
			rec.add(time.Since(t))
			return nil
		})
	}
	_ = g.Wait()
	res.Secs = time.Since(t).Seconds()
	res.Session = rec.dist()
	r.say(fmt.Sprintf("ssh: %d sessions in %.1fs, p50 %.1f ms, p99 %.1f ms, %d errors %v",
		res.Sessions, res.Secs, res.Session.P50, res.Session.P99, res.Errors, res.ErrorKinds))
	return res, ctx.Err()
}

// sshTrue runs `true` in a's workspace through the control plane, as an
// OpenSSH client with courier's ProxyCommand would, and returns the failed
// step's name with any error.
func sshTrue(ctx context.Context, a *simAgent) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, err := a.user.api.DialSSH(ctx, a.workspace)
	if err != nil {
		return "ssh_dial", err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	cc, chans, reqs, err := gossh.NewClientConn(nc, a.workspace, &gossh.ClientConfig{
		User: "coder",
		// The simulated agents' host key is random per run; what is
		// measured is the path, not host authentication.
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), //nolint:gosec // see above
	})
	if err != nil {
		return "ssh_handshake", err
	}
	c := gossh.NewClient(cc, chans, reqs)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "ssh_session", err
	}
	defer s.Close()
	if err := s.Run("true"); err != nil {
		return "ssh_exit", err
	}
	return "", nil
}
