package loadtest

import (
	"context"
	"fmt"
	"maps"
	"syscall"
	"time"

	"github.com/courierhq/courier/agent/proto"
)

// survivableStall is the longest freeze that must cost no session: well
// within the time both ends of a session give a keepalive to be answered
// (proto.DefaultWriteTimeout). Sessions lost to a shorter stall count as
// failures.
const survivableStall = proto.DefaultWriteTimeout / 2

// stallWatch is how long the agents are watched after a stalled balancer
// resumes: longer than an agent's keepalive needs to give up on a dead
// path (proto.DefaultKeepaliveInterval + proto.DefaultWriteTimeout), so a
// session the stall broke is counted.
const stallWatch = 30 * time.Second

// StallResult is the first balancer frozen (SIGSTOP) for a while with the
// fleet steady, then resumed (see FleetConfig.StallBalancer).
type StallResult struct {
	StallSecs float64 `json:"stall_seconds"`
	// AgentsBehind is how many agents connect through the frozen balancer.
	AgentsBehind int `json:"agents_behind"`
	// Lost is how many agents lost their session from the freeze until
	// stallWatch after the resume; NotReapplied how many of those had not
	// applied again when the watch ended (then the step waits for them, up
	// to the run's timeout, before the next one).
	Lost         int `json:"lost"`
	NotReapplied int `json:"not_reapplied"`
	// Failures is Lost when the stall was survivable (survivableStall),
	// else 0.
	Failures int `json:"failures"`
	// Errors are the agents' errors counted meanwhile, by kind.
	Errors map[string]int `json:"errors,omitempty"`
}

// stallBalancer freezes the first balancer for d, resumes it, and counts
// what its agents lost.
func (fr *fleetRun) stallBalancer(ctx context.Context, d time.Duration) (StallResult, error) {
	r := fr.r
	res := StallResult{StallSecs: d.Seconds()}
	for i := range r.fleet.agents {
		if i%len(fr.balancers) == 0 { // as splitAgents deals them
			res.AgentsBehind++
		}
	}
	before, err := fr.shards.callAll(opMark)
	if err != nil {
		return res, err
	}
	b := fr.balancers[0]
	r.say(fmt.Sprintf("stall: SIGSTOP to balancer 0 (%d agents behind it) for %s", res.AgentsBehind, d))
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return res, fmt.Errorf("stopping balancer 0: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	// Resumed whatever happens: a frozen balancer would hang the rest.
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return res, fmt.Errorf("resuming balancer 0: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	r.say(fmt.Sprintf("stall: balancer 0 resumed; watching its agents for %s", stallWatch))
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(stallWatch):
	}
	m, err := fr.shards.callAll(opOutage)
	if err != nil {
		return res, err
	}
	res.Lost, res.NotReapplied = m.Lost, m.NotReapplied
	res.Errors = errorsSince(before.Errors, m.Errors)
	if d <= survivableStall {
		res.Failures = res.Lost
	}
	r.say(fmt.Sprintf("stall: %d sessions lost, %d not re-applied yet; errors meanwhile %v", res.Lost, res.NotReapplied, res.Errors))
	if res.NotReapplied > 0 {
		err = fr.waitOutage(ctx, "stall", func(m merged) bool { return m.NotReapplied == 0 })
	}
	return res, err
}

// errorsSince is the errors counted in after that were not yet in before.
func errorsSince(before, after map[string]int) map[string]int {
	out := maps.Clone(after)
	for k, v := range before {
		if out[k] -= v; out[k] <= 0 {
			delete(out, k)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
