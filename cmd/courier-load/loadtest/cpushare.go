package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

// CPUShare is where the machine's CPU went during one phase of the replica
// scenario. The control plane (its live replicas and PostgreSQL) shares
// the machine's cores with the harness that stands in for remote agents
// and balancers (the load shards and haproxy), so a phase that took long
// because the harness had most of the CPU says so here.
type CPUShare struct {
	WallSecs float64 `json:"wall_seconds"`
	// Cores is runtime.NumCPU: the machine could give WallSecs × Cores.
	Cores int `json:"cores"`
	// ReplicasSecs leaves out a replica killed during the phase.
	ReplicasSecs  float64 `json:"replicas_cpu_seconds"`
	PostgresSecs  float64 `json:"postgres_cpu_seconds"`
	BalancersSecs float64 `json:"balancers_cpu_seconds"`
	ShardsSecs    float64 `json:"shards_cpu_seconds"`
	// MachineSecs is every process's CPU time (/proc/stat): the above,
	// this tool's own and anything else running on the machine.
	MachineSecs float64 `json:"machine_cpu_seconds"`
}

// say is s as a progress line for phase.
func (s CPUShare) say(phase string) string {
	return fmt.Sprintf("%s: CPU over %.1fs (%d cores: %.1fs): replicas %.1fs, PostgreSQL %.1fs, haproxy %.1fs, load shards %.1fs; the machine %.1fs in all",
		phase, s.WallSecs, s.Cores, s.WallSecs*float64(s.Cores), s.ReplicasSecs, s.PostgresSecs, s.BalancersSecs, s.ShardsSecs, s.MachineSecs)
}

// cpuMark is every party's CPU time at one moment. Processes are keyed by
// PID, so that a process started between two marks (the load shards, a
// restarted replica) counts from its start and one killed in between is
// left out, rather than either being counted against another's figure.
type cpuMark struct {
	at                time.Time
	replicas          map[int64]float64
	balancers, shards map[int]float64
	pg, machine       float64
}

// markCPU reads every party's CPU time now. Parties that cannot be read
// (a process gone) are left out; PostgreSQL's failure to answer leaves it
// at 0, which since then reports as 0.
func (fr *fleetRun) markCPU(ctx context.Context) cpuMark {
	m := cpuMark{at: time.Now(), replicas: map[int64]float64{}, balancers: map[int]float64{}, shards: map[int]float64{}}
	for _, p := range fr.replicas {
		if pid := p.pid.Load(); pid != 0 {
			if ps, err := readProc(int(pid)); err == nil {
				m.replicas[pid] = ps.CPUSecs
			}
		}
	}
	for _, b := range fr.balancers {
		if b.cmd != nil && b.cmd.Process != nil {
			if ps, err := readProc(b.cmd.Process.Pid); err == nil {
				m.balancers[b.cmd.Process.Pid] = ps.CPUSecs
			}
		}
	}
	for _, sp := range fr.shards {
		if ps, err := readProc(sp.cmd.Process.Pid); err == nil {
			m.shards[sp.cmd.Process.Pid] = ps.CPUSecs
		}
	}
	if st, err := fr.pg.stats(ctx); err == nil {
		m.pg = st.CPUSecs
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		m.machine = machineBusySecs(b)
	}
	return m
}

// since is the CPU each party used from m0 to m.
func (m cpuMark) since(m0 cpuMark) CPUShare {
	s := CPUShare{WallSecs: m.at.Sub(m0.at).Seconds(), Cores: runtime.NumCPU(), MachineSecs: m.machine - m0.machine}
	s.ReplicasSecs = sumSince(m.replicas, m0.replicas)
	s.BalancersSecs = sumSince(m.balancers, m0.balancers)
	s.ShardsSecs = sumSince(m.shards, m0.shards)
	if m0.pg > 0 && m.pg > 0 {
		s.PostgresSecs = m.pg - m0.pg
	}
	return s
}

// sumSince sums what each process of now used since before: now[k] −
// before[k], or all of now[k] for a process started in between (its whole
// life is in the phase). A process gone by now is left out: what it used
// before it died cannot be read.
func sumSince[K comparable](now, before map[K]float64) float64 {
	var sum float64
	for k, v := range now {
		if v0, ok := before[k]; !ok {
			sum += v
		} else if v >= v0 {
			sum += v - v0
		}
	}
	return sum
}

// machineBusySecs reads the machine's busy CPU time, all cores summed,
// from the "cpu" line of /proc/stat: user, nice, system, irq, softirq and
// steal (idle and iowait are not busy; guest time is already in user), in
// clock ticks of 1/100 s. 0 if the line is missing or malformed.
func machineBusySecs(stat []byte) float64 {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0
		}
		ticks += v
	}
	return float64(ticks) / 100
}
