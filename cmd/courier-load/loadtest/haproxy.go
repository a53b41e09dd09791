package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// errNoHAProxy is returned when haproxy is not installed.
var errNoHAProxy = errors.New("haproxy is not installed (apt-get install haproxy)")

// balancer is one haproxy process in front of every replica.
type balancer struct {
	listen string
	cmd    *exec.Cmd
	exit   chan error
}

// haproxyConfig is the balancer's configuration. Agents hold a websocket
// for as long as they run, so the tunnel timeout (what applies once a
// connection is upgraded) is long; the agents' own keepalive keeps them
// from idling out. leastconn sends a reconnecting agent to the replica
// with the fewest connections from this balancer: after a replica is
// back, reconnects (rebalancing, natural churn) fill it first. A replica
// is checked on /readyz every 2 s and leaves after two failed checks
// (every 1 s while it is down, to see it back sooner). Not faster: with
// "timeout check" set, haproxy gives a check's connect min(timeout
// connect, inter), and in a reconnect storm a live replica's accept queue
// can drop a SYN, which the kernel sends again after 1 s; at the 500 ms
// this tool used, such a connect failed the check, two did it twice, and
// balancers took live replicas out (BENCHMARKS.md, "Where the CPU goes
// while a replica is killed" and "The balancers' checks"). No fastinter,
// which would shorten the connect again in a transition. Until the
// killed replica is out, leastconn sends reconnecting agents to it (it
// has the fewest connections): a refused connection is retried on
// another replica (redispatch at every retry, after haproxy's turn-around
// of min(timeout connect, 1 s)), so it costs a retry, not an error. An
// upgrade already sent to a replica that dies before answering (no
// response at all) is retried on another too (retry-on empty-response),
// instead of being answered 502; only GETs are retried so, since a
// create or delete might have been applied before the replica died. No
// "observe layer4 ... on-error mark-down": under a reconnect storm it
// would take live replicas out on a few slow connects, and with all of
// them out the balancer answers 503 to everyone. Failed checks are logged
// (log-health-checks) to the children's log.
// maxconn is per balancer: each agent takes two descriptors (client and
// server side).
func haproxyConfig(listen string, maxconn int, replicas []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn %d
defaults
	mode http
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout tunnel 1h
	timeout check 3s
	retries 3
	option redispatch 1
	retry-on conn-failure empty-response
frontend courier
	bind %s
	default_backend replicas
backend replicas
	balance leastconn
	http-request disable-l7-retry if !METH_GET
	option httpchk GET /readyz
	http-check expect status 200
	option log-health-checks
	default-server inter 2s downinter 1s fall 2 rise 2 maxconn %d
`, maxconn, listen, maxconn)
	for i, r := range replicas {
		fmt.Fprintf(&b, "\tserver r%d %s check\n", i, r)
	}
	return b.String()
}

// startBalancer writes the configuration into dir and starts haproxy in
// the foreground (-db), its output to logTo, then waits until it answers
// /healthz through a replica.
func startBalancer(ctx context.Context, dir string, n, maxconn int, replicas []string, logTo io.Writer) (*balancer, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, errNoHAProxy
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("haproxy-%d.cfg", n))
	if err := os.WriteFile(path, []byte(haproxyConfig(listen, maxconn, replicas)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logTo, logTo
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting haproxy: %w", err)
	}
	b := &balancer{listen: listen, cmd: cmd, exit: make(chan error, 1)}
	go func() { b.exit <- cmd.Wait() }()
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-b.exit:
			b.exit <- err
			return nil, fmt.Errorf("haproxy exited at start: %v (see its log)", err)
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), b.stop())
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := hc.Get(b.url() + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
	}
	return nil, errors.Join(errors.New("haproxy did not serve within 30s"), b.stop())
}

func (b *balancer) url() string { return "http://" + b.listen }

// stop kills haproxy and waits for it.
func (b *balancer) stop() error {
	if b.cmd == nil {
		return nil
	}
	_ = b.cmd.Process.Kill()
	<-b.exit
	b.cmd = nil
	return nil
}
