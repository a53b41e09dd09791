// Package benchload runs a benchmark's operations over concurrent workers
// and measures their rate and the CPU time each cost, for the benchmarks
// that compare two arms (audit on and off) round by round.
package benchload

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier/internal/cputime"
)

// Run calls op n times in all, spread over workers goroutines: each call
// gets its worker's index and the operation's number, 1 to n. A worker
// stops at its first error; Run returns the first error of all, once
// every worker has stopped. Each call counts as perCall operations (three
// requests, say) in the rate (operations a second) and in the CPU time an
// operation (µs, the whole process: on a shared machine, other processes
// disturb it far less than wall time).
func Run(workers, n, perCall int, op func(worker int, i int64) error) (rate, cpuPerOp float64, err error) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Pointer[error]
	)
	start, cpu0 := time.Now(), cputime.Process()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := op(w, i); err != nil {
					failure.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := failure.Load(); f != nil {
		return 0, 0, *f
	}
	ops := float64(n * perCall)
	return ops / time.Since(start).Seconds(), float64((cputime.Process() - cpu0).Microseconds()) / ops, nil
}
