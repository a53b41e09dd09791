package loadtest

import (
	"slices"
	"sync"
	"time"
)

// Dist is a latency distribution in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// recorder collects durations of one kind. mu guards samples.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

// dist summarises the samples so far.
func (r *recorder) dist() Dist {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	return distOf(s)
}

func distOf(s []time.Duration) Dist {
	if len(s) == 0 {
		return Dist{}
	}
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Dist{N: len(s), P50: ms(at(0.50)), P99: ms(at(0.99)), Max: ms(s[len(s)-1])}
}

// errorCounts counts errors by kind. mu guards m.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// Spread is how re-applies after an event were spread over time: the
// number of agents that finished in each second after it.
type Spread struct {
	// PerSecond[i] counts agents re-applied in [i s, i+1 s).
	PerSecond []int `json:"per_second"`
}

func spreadOf(ds []time.Duration) Spread {
	var sp Spread
	for _, d := range ds {
		i := max(0, int(d/time.Second))
		for len(sp.PerSecond) <= i {
			sp.PerSecond = append(sp.PerSecond, 0)
		}
		sp.PerSecond[i]++
	}
	return sp
}
