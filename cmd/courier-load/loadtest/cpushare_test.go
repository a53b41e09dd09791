package loadtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestMachineBusySecs(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"busy fields summed, idle and iowait not", "cpu  1000 20 300 9999 77 4 5 6 500 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", 13.35},
		{"no newline at the end", "cpu  100 0 0 0 0 0 0 0", 1},
		{"a per-core line first is not the total", "cpu0 1 2 3 4 5 6 7 8\n", 0},
		{"too few fields", "cpu  1 2 3\n", 0},
		{"not a number", "cpu  1 2 x 4 5 6 7 8\n", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := machineBusySecs([]byte(tc.stat)); got < tc.want-1e-9 || got > tc.want+1e-9 {
				t.Fatalf("machineBusySecs(%q) = %v, want %v", tc.stat, got, tc.want)
			}
		})
	}
	// This machine's own /proc/stat reads as some busy time.
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "cpu ") || machineBusySecs(b) <= 0 {
		t.Fatalf("this machine's /proc/stat read as %v busy seconds", machineBusySecs(b))
	}
}

// A process gone by the second mark (a replica killed) counts for nothing,
// one started in between (the load shards) counts all it used, and the
// others what they used since the first mark.
func TestCPUMarkSince(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m0 := cpuMark{at: t0, replicas: map[int64]float64{10: 5, 11: 7, 12: 100},
		balancers: map[int]float64{20: 1}, shards: map[int]float64{30: 2, 31: 3}, pg: 40, machine: 500}
	m1 := cpuMark{at: t0.Add(30 * time.Second), replicas: map[int64]float64{10: 15, 11: 9, 13: 4},
		balancers: map[int]float64{20: 6}, shards: map[int]float64{30: 12, 31: 13, 32: 8}, pg: 52, machine: 560}
	s := m1.since(m0)
	if s.WallSecs != 30 || s.ReplicasSecs != 16 || s.BalancersSecs != 5 || s.ShardsSecs != 28 ||
		s.PostgresSecs != 12 || s.MachineSecs != 60 || s.Cores < 1 {
		t.Fatalf("since = %+v", s)
	}
	// PostgreSQL unread at either mark is 0, never a difference with 0.
	m1.pg = 0
	if s := m1.since(m0); s.PostgresSecs != 0 {
		t.Fatalf("PostgreSQL unread at the end: %v, want 0", s.PostgresSecs)
	}
	if !strings.Contains(s.say("kill"), "replicas 16.0s") {
		t.Fatalf("say: %s", s.say("kill"))
	}
}
