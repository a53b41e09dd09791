package agentapi_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/agentapi"
	"github.com/courierhq/courier/controlplane/store"
)

const (
	envBenchURL    = "AGENTAPI_BENCH_URL"
	envBenchAgents = "AGENTAPI_BENCH_AGENTS"
	benchSessions  = 1000
)

func benchToken(i int) string { return fmt.Sprintf("bench-agent-token-%06d-0123456789", i) }

// BenchmarkSessionMemory measures what an idle agent session costs the
// server: 1,000 agents, in a child process so that only the server's side
// is in this one, connect with the real client, fetch their manifest and
// secrets and report an apply as an agent does, then idle. The server's
// memory is read from runtime/metrics after a GC, before and after.
//
//	go test -run '^$' -bench SessionMemory -benchtime 1x ./controlplane/agentapi/
//
// Prefix GODEBUG=adaptivestackstart=0 to measure stacks as the deployed
// server runs (see wsConn.Write): without it yamux's send loop starts, and
// stays, at 4 KiB.
//
// With AGENTAPI_BENCH_HEAPPROFILE=file and -test.memprofilerate=1 it also
// writes a heap profile of the server with the sessions connected.
//
// Metrics per session: heap-B (live heap objects), unused-B (the free
// slots of the heap's spans that hold live objects: what the connects'
// garbage leaves behind), stack-B (goroutine stacks), goroutines. A whole control plane's RSS is courier-load's to
// measure (BENCHMARKS.md).
func BenchmarkSessionMemory(b *testing.B) {
	// The fixture's observed logger would keep every session's log lines.
	f := setupCfg(b, func(c *agentapi.Config) { c.Logger = zap.NewNop() })
	ctx := context.Background()
	for i := range benchSessions {
		sum := sha256.Sum256([]byte(benchToken(i)))
		ws := store.Workspace{ID: fmt.Sprintf("bw%d", i), Name: fmt.Sprintf("bench-%d", i), OwnerID: f.owner.ID,
			AgentTokenHash: sum[:], CreatedAt: time.Now()}
		if err := f.st.CreateWorkspace(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var heap, unused, stack, gs float64
	for range b.N {
		before := serverMemory()
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), envBenchURL+"="+f.http.URL, envBenchAgents+"="+strconv.Itoa(benchSessions))
		child.Stderr = os.Stderr
		stdin, _ := child.StdinPipe()
		stdout, _ := child.StdoutPipe()
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		// The child says "ready" once every agent has applied.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			b.Fatalf("child: %q %v", line, err)
		}
		for f.srv.Connected() < benchSessions {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second) // the last reports' requests end
		after := serverMemory()
		if p := os.Getenv("AGENTAPI_BENCH_HEAPPROFILE"); p != "" {
			// With -test.memprofilerate=1: where each byte of a session is.
			writeHeapProfile(b, p)
		}
		_ = stdin.Close() // the child disconnects and exits
		if err := child.Wait(); err != nil {
			b.Fatal(err)
		}
		for f.srv.Connected() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		heap += (after[0] - before[0]) / benchSessions
		stack += (after[1] - before[1]) / benchSessions
		gs += (after[2] - before[2]) / benchSessions
		unused += (after[3] - before[3]) / benchSessions
	}
	n := float64(b.N)
	b.ReportMetric(heap/n, "heap-B/session")
	b.ReportMetric(unused/n, "unused-B/session")
	b.ReportMetric(stack/n, "stack-B/session")
	b.ReportMetric(gs/n, "goroutines/session")
	b.ReportMetric(0, "ns/op")
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// serverMemory returns live heap bytes, stack bytes, goroutines and the
// unused bytes of in-use heap spans after a GC.
func serverMemory() [4]float64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return [4]float64{float64(s[0].Value.Uint64()), float64(s[1].Value.Uint64()), float64(s[2].Value.Uint64()),
		float64(s[3].Value.Uint64())}
}

// benchClientsChild runs BenchmarkSessionMemory's agents when this process
// is its child, and reports whether it was: each agent connects, fetches
// and reports an apply; then "ready" on stdout, and all wait for stdin to
// close.
func benchClientsChild() bool {
	url := os.Getenv(envBenchURL)
	if url == "" {
		return false
	}
	n, _ := strconv.Atoi(os.Getenv(envBenchAgents))
	ctx := context.Background()
	sessions := make([]*conn.Session, n)
	var g errgroup.Group
	g.SetLimit(50)
	for i := range n {
		g.Go(func() error {
			s, err := conn.Dial(ctx, conn.Config{URL: url, Token: benchToken(i)})
			if err != nil {
				return err
			}
			sessions[i] = s
			if _, err := s.Manifest(ctx); err != nil {
				return err
			}
			if _, err := s.Secrets(ctx); err != nil {
				return err
			}
			return s.ReportApply(ctx, proto.ApplyReport{})
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "bench agents:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range sessions {
		_ = s.Close()
	}
	return true
}
