package loadtest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// A process may hold at most 20,000 descriptors here, one per simulated
// agent, so the replica scenario runs its agents in shard processes (this
// program re-executed, see ServeChild) and merges what they report. The
// parent writes JSON lines to a shard's stdin — first a shardStart, then
// one shardCmd at a time — and reads one shardReply line per command from
// its stdout. Agent tokens travel on that pipe only, never in argv or the
// environment. A shard ends when its stdin closes.

// Commands of a shard.
const (
	opStatus = "status" // connected and applied counts, errors so far
	opMark   = "mark"   // remember every agent's state (before a kill)
	opOutage = "outage" // what changed since the mark
	opFinal  = "final"  // the latency samples, then the shard stops its agents
)

// shardAgent is one agent handed to a shard: its workspace, agent token
// and the balancer it dials.
type shardAgent struct {
	Workspace string `json:"workspace"`
	Token     string `json:"token"`
	URL       string `json:"url"`
}

// shardStart is a shard's first message.
type shardStart struct {
	Agents  []shardAgent `json:"agents"`
	Dialers int          `json:"dialers"`
}

type shardCmd struct {
	Op string `json:"op"`
}

// shardReply answers one command. Times are UnixNano, durations
// nanoseconds.
type shardReply struct {
	Err          string         `json:"err,omitempty"`
	Agents       int            `json:"agents"`
	Connected    int64          `json:"connected"`
	FirstApplied int64          `json:"first_applied"`
	Errors       map[string]int `json:"errors,omitempty"`
	// Since the mark (opOutage): agents that lost their session, when
	// each of them applied again, how many did not yet, and how many
	// agents have not seen a newer secrets revision than at the mark.
	Lost          int     `json:"lost,omitempty"`
	ReappliedAt   []int64 `json:"reapplied_at,omitempty"`
	NotReapplied  int     `json:"not_reapplied,omitempty"`
	StaleRevision int     `json:"stale_revision,omitempty"`
	// opFinal: every sample.
	Connect []int64 `json:"connect,omitempty"`
	Fetch   []int64 `json:"fetch,omitempty"`
	Apply   []int64 `json:"apply,omitempty"`
}

// agentMark is an agent's state at opMark.
type agentMark struct {
	applies, losses, revision int64
}

// splitAgents deals agents to shards of at most perShard (as evenly as
// possible) and agent i to balancer i mod len(urls), so every shard and
// every balancer gets its share.
func splitAgents(agents []shardAgent, perShard int, urls []string) [][]shardAgent {
	if len(agents) == 0 || perShard < 1 || len(urls) == 0 {
		return nil
	}
	n := (len(agents) + perShard - 1) / perShard
	shards := make([][]shardAgent, n)
	for i, a := range agents {
		a.URL = urls[i%len(urls)]
		shards[i%n] = append(shards[i%n], a)
	}
	return shards
}

// merged is the shards' replies added up.
type merged struct {
	Agents, Lost, NotReapplied, StaleRevision int
	Connected, FirstApplied                   int64
	Errors                                    map[string]int
	ReappliedAt                               []int64
	Connect, Fetch, Apply                     Dist
}

// mergeReplies adds up the shards' replies; distributions are computed
// over every shard's samples together, not averaged.
func mergeReplies(rs []shardReply) merged {
	m := merged{Errors: map[string]int{}}
	var c, f, a []time.Duration
	durs := func(ns []int64) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n)
		}
		return out
	}
	for _, r := range rs {
		m.Agents += r.Agents
		m.Connected += r.Connected
		m.FirstApplied += r.FirstApplied
		m.Lost += r.Lost
		m.NotReapplied += r.NotReapplied
		m.StaleRevision += r.StaleRevision
		m.ReappliedAt = append(m.ReappliedAt, r.ReappliedAt...)
		for k, v := range r.Errors {
			m.Errors[k] += v
		}
		c, f, a = append(c, durs(r.Connect)...), append(f, durs(r.Fetch)...), append(a, durs(r.Apply)...)
	}
	slices.Sort(m.ReappliedAt)
	m.Connect, m.Fetch, m.Apply = distOf(c), distOf(f), distOf(a)
	return m
}

// serveShard is the shard process: it runs the agents of the shardStart
// read from in and answers commands until in closes or ctx ends.
func serveShard(ctx context.Context, in io.Reader, out, logTo io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	var start shardStart
	if err := dec.Decode(&start); err != nil {
		return fmt.Errorf("shard: reading the start message: %w", err)
	}
	if err := raiseFileLimit(len(start.Agents) + 200); err != nil {
		return err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := gossh.NewSignerFromKey(key)
	if err != nil {
		return err
	}
	env := &fleetEnv{connect: &recorder{}, fetch: &recorder{}, apply: &recorder{}, errs: &errorCounts{},
		ssh: newNullSSHServer(signer.(gliderssh.Signer))}
	agents := make([]*simAgent, len(start.Agents))
	for i, sa := range start.Agents {
		if agents[i], err = newSimAgent(sa.Workspace, sa.Token, nil); err != nil {
			return err
		}
		agents[i].url = sa.URL
	}
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() { // the agents start, at most Dialers connecting at once
		defer wg.Done()
		sem := make(chan struct{}, max(1, start.Dialers))
		for _, a := range agents {
			select {
			case sem <- struct{}{}:
			case <-actx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = a.run(actx, env, func() { <-sem })
			}()
		}
	}()
	cmds := make(chan shardCmd)
	readErr := make(chan error, 1)
	go func() {
		defer close(cmds)
		for {
			var c shardCmd
			if err := dec.Decode(&c); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr <- err
				}
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var c shardCmd
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case c, ok = <-cmds:
		}
		if !ok {
			select {
			case err := <-readErr:
				fmt.Fprintln(logTo, "shard: reading a command:", err)
				return err
			default:
				return nil // stdin closed: the parent is done
			}
		}
		rep := shardReply{Agents: len(agents), Connected: env.connected.Load(), FirstApplied: env.firstApplied.Load(),
			Errors: env.errs.snapshot()}
		switch c.Op {
		case opStatus:
		case opMark:
			for _, a := range agents {
				a.mark = agentMark{applies: a.applies.Load(), losses: a.losses.Load(), revision: a.seenRevision.Load()}
			}
		case opOutage:
			outageReply(agents, &rep)
		case opFinal:
			stop()
			wg.Wait()
			rep.Errors = env.errs.snapshot()
			rep.Connect, rep.Fetch, rep.Apply = nanos(env.connect), nanos(env.fetch), nanos(env.apply)
		default:
			rep.Err = fmt.Sprintf("unknown command %q", c.Op)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// outageReply fills rep with what changed since the mark.
func outageReply(agents []*simAgent, rep *shardReply) {
	for _, a := range agents {
		if a.seenRevision.Load() <= a.mark.revision {
			rep.StaleRevision++
		}
		if a.losses.Load() <= a.mark.losses {
			continue
		}
		rep.Lost++
		if a.applies.Load() <= a.mark.applies {
			rep.NotReapplied++
			continue
		}
		rep.ReappliedAt = append(rep.ReappliedAt, a.lastApply.Load())
	}
}

func nanos(r *recorder) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int64, len(r.samples))
	for i, d := range r.samples {
		out[i] = int64(d)
	}
	return out
}

// shardProc is the parent's end of one shard. mu serializes commands.
type shardProc struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	exit chan error
}

// startShard runs exe as a shard with agents; its stderr goes to logTo.
func startShard(exe string, start shardStart, logTo *os.File) (*shardProc, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envChild+"=shard")
	cmd.Stderr = logTo
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a shard: %w", err)
	}
	p := &shardProc{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out)),
		exit: make(chan error, 1)}
	if err := p.enc.Encode(start); err != nil {
		return nil, errors.Join(fmt.Errorf("starting a shard: %w", err), p.stop())
	}
	return p, nil
}

// call sends one command and reads its reply.
func (p *shardProc) call(op string) (shardReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rep shardReply
	if err := p.enc.Encode(shardCmd{Op: op}); err != nil {
		return rep, fmt.Errorf("shard %s: %w", op, err)
	}
	if err := p.dec.Decode(&rep); err != nil {
		return rep, fmt.Errorf("shard %s: %w (see the shard's log)", op, err)
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("shard %s: %s", op, rep.Err)
	}
	return rep, nil
}

// stop closes the shard's stdin, which ends it, and waits (SIGKILL after
// 30 s).
func (p *shardProc) stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.in.Close()
	go func() { p.exit <- p.cmd.Wait() }()
	var err error
	select {
	case err = <-p.exit:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		err = <-p.exit
	}
	p.cmd = nil
	return err
}

// shards is every shard; callAll asks them all at once.
type shards []*shardProc

func (ss shards) callAll(op string) (merged, error) {
	reps := make([]shardReply, len(ss))
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = s.call(op)
		}()
	}
	wg.Wait()
	return mergeReplies(reps), errors.Join(errs...)
}

func (ss shards) stop() error {
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.stop())
	}
	return errors.Join(errs...)
}
