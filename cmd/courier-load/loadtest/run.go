package loadtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Summary is the JSON a run prints at the end.
type Summary struct {
	Date       time.Time `json:"date"`
	GoVersion  string    `json:"go_version"`
	CPUs       int       `json:"cpus"`
	Agents     int       `json:"agents"`
	Users      int       `json:"users"`
	SetupSecs  float64   `json:"setup_seconds"`
	ConnectAll float64   `json:"connect_all_seconds"` // until every agent applied once
	Connect    Dist      `json:"connect"`
	Fetch      Dist      `json:"fetch"`
	Apply      Dist      `json:"apply"`
	// Errors counts every failed attempt by kind, transient ones (refused
	// while the control plane is down, 503s that shed load) included.
	Errors map[string]int `json:"errors"`
	// Failures counts the kinds that are not transient; 0 is a clean run.
	Failures int             `json:"failures"`
	Steady   *SteadyResult   `json:"steady,omitempty"`
	Restarts []RestartResult `json:"restarts,omitempty"`
	Churn    *ChurnResult    `json:"churn,omitempty"`
	SSH      *SSHResult      `json:"ssh,omitempty"`
	// Fleet is the replica scenario's (FleetConfig).
	Fleet *FleetResult `json:"fleet,omitempty"`
}

// Runner runs one load configuration. Progress lines go to Progress.
type Runner struct {
	cfg Config
	// progress is written by the run and by its progress line's goroutine;
	// progressMu serializes the two.
	progressMu sync.Mutex
	progress   io.Writer
	tty        bool

	srv   *serverProc // nil when Config.URL is given
	url   string
	pprof string
	fleet *fleet
	env   *fleetEnv
}

// New validates cfg (nil fields take DefaultConfig's) and returns a Runner.
// It starts nothing.
func New(cfg Config, progress io.Writer, tty bool) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Exe == "" && cfg.URL == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Exe = exe
	}
	if progress == nil {
		progress = io.Discard
	}
	return &Runner{cfg: cfg, progress: progress, tty: tty}, nil
}

func (r *Runner) say(msg string) {
	clear := ""
	if r.tty {
		clear = "\r\033[K" // over the progress line
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	fmt.Fprintf(r.progress, "%s%s %s\n", clear, time.Now().Format("15:04:05"), msg)
}

// raiseFileLimit lifts the soft open-file limit to the hard one.
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return err
		}
	}
	if int(lim.Cur) < need {
		return fmt.Errorf("%w: %d agents need about %d open files; the limit is %d", ErrConfig, need-200, need, lim.Cur)
	}
	return nil
}

// Run sets up the fleet, connects it, runs the scenarios and cleans up.
func (r *Runner) Run(ctx context.Context) (sum Summary, err error) {
	cfg := r.cfg
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	sum = Summary{Date: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Agents: cfg.Agents}
	if cfg.Fleet.Replicas != 0 {
		return r.runFleet(ctx, sum)
	}
	if err := raiseFileLimit(cfg.Agents + 200); err != nil {
		return sum, err
	}
	r.url = cfg.URL
	if cfg.URL == "" {
		dir, err := os.MkdirTemp("", "courier-load-")
		if err != nil {
			return sum, err
		}
		defer os.RemoveAll(dir)
		listen, err := freeLoopbackAddr()
		if err != nil {
			return sum, err
		}
		if r.pprof, err = freeLoopbackAddr(); err != nil {
			return sum, err
		}
		logf, err := os.Create(dir + "/server.log")
		if err != nil {
			return sum, err
		}
		defer logf.Close()
		r.srv = &serverProc{exe: cfg.Exe, listen: listen, dataDir: dir + "/data", pprof: r.pprof, logTo: logf}
		if err := r.srv.start(ctx); err != nil {
			return sum, err
		}
		defer func() { err = errors.Join(err, r.srv.stop()) }()
		r.url = r.srv.url()
		r.say("control plane started at " + r.url + " (pprof at http://" + r.pprof + "/debug/pprof/)")
	}

	t := time.Now()
	r.fleet, err = setup(ctx, cfg, r.url, r.say)
	if err != nil {
		return sum, fmt.Errorf("setup: %w", err)
	}
	sum.Users = len(r.fleet.users)
	sum.SetupSecs = time.Since(t).Seconds()
	r.say(fmt.Sprintf("setup done in %.1fs: %d users, %d workspaces", sum.SetupSecs, sum.Users, cfg.Agents))
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cerr := r.fleet.cleanup(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return sum, err
	}
	signer, err := gossh.NewSignerFromKey(key)
	if err != nil {
		return sum, err
	}
	r.env = &fleetEnv{url: r.url, connect: &recorder{}, fetch: &recorder{}, apply: &recorder{},
		errs: &errorCounts{}, ssh: newNullSSHServer(signer.(gliderssh.Signer))}

	base, err := r.baseline(ctx)
	if err != nil {
		return sum, err
	}
	// The agents run until the scenarios are done.
	actx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopAgents()
		wg.Wait()
	}()
	stopProgress := r.showProgress(actx)
	defer stopProgress()
	t = time.Now()
	if err := r.connectAll(actx, &wg); err != nil {
		return r.finish(sum), err
	}
	sum.ConnectAll = time.Since(t).Seconds()
	r.say(fmt.Sprintf("all %d agents applied in %.1fs", cfg.Agents, sum.ConnectAll))

	for _, sc := range cfg.Scenarios {
		switch sc {
		case ScenarioSteady:
			res, err := r.steady(ctx, base)
			sum.Steady = &res
			if err != nil {
				return r.finish(sum), err
			}
		case ScenarioRestart:
			res, err := r.restart(ctx)
			sum.Restarts = append(sum.Restarts, res)
			if err != nil {
				return r.finish(sum), err
			}
		case ScenarioChurn:
			res, err := r.churn(ctx)
			sum.Churn = &res
			if err != nil {
				return r.finish(sum), err
			}
		case ScenarioSSH:
			res, err := r.sshFanOut(ctx)
			sum.SSH = &res
			if err != nil {
				return r.finish(sum), err
			}
		}
	}
	stopAgents()
	wg.Wait()
	return r.finish(sum), nil
}

// finish fills the distributions and error counts.
func (r *Runner) finish(sum Summary) Summary {
	sum.Connect, sum.Fetch, sum.Apply = r.env.connect.dist(), r.env.fetch.dist(), r.env.apply.dist()
	sum.Errors = r.env.errs.snapshot()
	for k, n := range sum.Errors {
		if !transientKinds[k] {
			sum.Failures += n
		}
	}
	if sum.SSH != nil {
		sum.Failures += sum.SSH.Errors
	}
	if sum.Churn != nil {
		sum.Failures += sum.Churn.APIErrors
	}
	for _, rr := range sum.Restarts {
		sum.Failures += rr.NotReapplied
	}
	return sum
}

// connectAll starts every agent's loop, at most Dialers connecting at once,
// and waits until each has applied once.
func (r *Runner) connectAll(ctx context.Context, wg *sync.WaitGroup) error {
	sem := make(chan struct{}, r.cfg.Dialers)
	for _, a := range r.fleet.agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.run(ctx, r.env, func() { <-sem })
		}()
	}
	return r.waitFor(ctx, r.cfg.Timeout, func() bool { return r.env.firstApplied.Load() == int64(len(r.fleet.agents)) },
		"every agent to apply once")
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func (r *Runner) waitFor(ctx context.Context, timeout time.Duration, cond func() bool, what string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// showProgress prints a status line every second (every 5 s when not on a
// terminal) until the returned function is called.
func (r *Runner) showProgress(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	every := 5 * time.Second
	if r.tty {
		every = time.Second
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				if r.tty {
					r.progressMu.Lock()
					fmt.Fprintln(r.progress)
					r.progressMu.Unlock()
				}
				return
			case <-time.After(every):
			}
			line := fmt.Sprintf("connected %d/%d, applied once %d, errors %v", r.env.connected.Load(), len(r.fleet.agents),
				r.env.firstApplied.Load(), r.env.errs.snapshot())
			if r.srv != nil {
				if ps, err := r.srv.stats(); err == nil {
					line += fmt.Sprintf(", server RSS %.0f MiB, CPU %.1fs", float64(ps.RSSBytes)/(1<<20), ps.CPUSecs)
				}
			}
			if r.tty {
				r.progressMu.Lock()
				fmt.Fprintf(r.progress, "\r\033[K%s", line)
				r.progressMu.Unlock()
			} else {
				r.say(line)
			}
		}
	}()
	return func() { cancel(); <-done }
}
