package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/controlplane/seal"
)

// Durability under SIGKILL: writers create, update and delete secrets through the
// REST API of a real `courier server` process (encryption on) while it is
// killed with SIGKILL, round after round. After each restart on the same
// data dir, every acknowledged write is there with its latest acknowledged
// value, and a write that was in flight is either wholly there or wholly
// absent. Values are read back the way agents read them: over the agent
// protocol, with a workspace's agent token.

const (
	durRounds  = 12 // bounded: about a second a round
	durWriters = 4
	durNames   = 8 // per writer; 32 secrets stay under the 50-secret cap
)

// durState is what a writer knows about one of its secrets.
type durState struct {
	exists  bool // created and acknowledged, or found after a restart
	acked   int  // latest acknowledged version, 0 for none
	pending int  // version in flight when the server died, 0 for none
	// deleting is set while a delete is in flight (and stays set if the
	// server died before answering).
	deleting bool
	// next is the highest version ever sent: versions never repeat, so a
	// deleted secret that came back would not pass for a new one.
	next int
}

func durValue(name string, ver int) string { return fmt.Sprintf("durable-%s-v%d", name, ver) }
func durDesc(ver int) string               { return fmt.Sprintf("ver=%d", ver) }
func durFile(name string) string           { return "~/d/" + name }

func TestKillNineKeepsEveryAcknowledgedWrite(t *testing.T) {
	dataDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "courier.key")
	if err := seal.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	p := startServer(t, dataDir, logs, "--encryption-key-file", keyFile)
	token := firstUserToken(t, p.url)
	st, b := request(t, "POST", p.url+"/api/v2/workspaces", token, map[string]any{"name": "dur", "owner": "ada"})
	var ws CreatedWorkspaceResponse
	if st != 201 || json.Unmarshal(b, &ws) != nil {
		t.Fatalf("create workspace: %d %s", st, b)
	}

	states := make([]map[string]*durState, durWriters)
	for w := range states {
		states[w] = map[string]*durState{}
		for n := range durNames {
			states[w][fmt.Sprintf("w%d-n%d", w, n)] = &durState{}
		}
	}
	var (
		totalAcks, totalPending, landed int
		deletes                         atomic.Int64
		ops                             = make([]int, durWriters) // each writer's operations so far
	)
	for round := range durRounds {
		var (
			acks    atomic.Int64
			killNow = make(chan struct{})
			once    sync.Once
			wg      sync.WaitGroup
		)
		killAfter := int64(5 + (round*7)%20) // vary the moment of the kill
		for w := range durWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ; ; ops[w]++ {
					op := ops[w]
					name := fmt.Sprintf("w%d-n%d", w, op%durNames)
					s := states[w][name]
					if s.exists && op%5 == 4 {
						s.deleting = true
						code, _ := request(t, "DELETE", p.url+"/api/v2/users/me/secrets/"+name, token, nil)
						switch code {
						case -1:
							return // the server is gone; s.deleting stays set
						case 204:
							*s = durState{next: s.next}
							acks.Add(1)
							deletes.Add(1)
							continue
						default:
							t.Errorf("round %d: delete %s answered %d", round, name, code)
							once.Do(func() { close(killNow) })
							return
						}
					}
					ver := s.next + 1
					s.next, s.pending = ver, ver
					var code int
					if s.exists {
						code, _ = request(t, "PATCH", p.url+"/api/v2/users/me/secrets/"+name, token,
							map[string]string{"value": durValue(name, ver), "description": durDesc(ver)})
					} else {
						code, _ = request(t, "POST", p.url+"/api/v2/users/me/secrets", token, map[string]string{
							"name": name, "value": durValue(name, ver), "description": durDesc(ver), "file_path": durFile(name)})
					}
					switch {
					case code == -1:
						return // the server is gone; s.pending stays set
					case code == 200 || code == 201:
						s.exists, s.acked, s.pending = true, ver, 0
						if acks.Add(1) >= killAfter {
							once.Do(func() { close(killNow) })
						}
					default:
						t.Errorf("round %d: %s answered %d", round, name, code)
						once.Do(func() { close(killNow) })
						return
					}
				}
			}()
		}
		<-killNow // writes are in flight: kill now
		p.kill()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		totalAcks += int(acks.Load())

		p = startServer(t, dataDir, logs, "--encryption-key-file", keyFile)
		meta, values := durReadBack(t, p.url, token, ws.AgentToken)
		for w := range durWriters {
			for name, s := range states[w] {
				if s.pending != 0 || s.deleting {
					totalPending++
				}
				if durCheck(t, round, name, s, meta, values) {
					landed++
				}
				delete(meta, name)
			}
		}
		for name := range meta {
			t.Errorf("round %d: secret %q exists that no writer created", round, name)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	p.kill()
	t.Logf("%d rounds, %d acknowledged writes (%d deletes), %d writes in flight at a kill (%d updates or creates landed whole)",
		durRounds, totalAcks, deletes.Load(), totalPending, landed)
	if strings.Contains(logs.String(), "durable-w") {
		t.Fatal("a secret value reached the server log")
	}
}

// durReadBack lists the secrets' metadata over REST and their values over
// the agent protocol.
func durReadBack(t *testing.T, url, token, agentToken string) (map[string]SecretResponse, map[string]string) {
	t.Helper()
	st, b := request(t, "GET", url+"/api/v2/users/me/secrets", token, nil)
	var list []SecretResponse
	if st != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list after restart: %d %s", st, b)
	}
	meta := map[string]SecretResponse{}
	for _, s := range list {
		meta[s.Name] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := conn.Dial(ctx, conn.Config{URL: url, Token: agentToken})
	if err != nil {
		t.Fatalf("agent dial after restart: %v", err)
	}
	defer sess.Close()
	secs, err := sess.Secrets(ctx)
	if err != nil {
		t.Fatalf("agent fetch after restart: %v", err)
	}
	values := map[string]string{}
	for _, s := range secs.Secrets {
		values[s.Name] = s.Value
	}
	if len(values) != len(meta) {
		t.Fatalf("the agent protocol delivers %d secrets, the REST list shows %d", len(values), len(meta))
	}
	return meta, values
}

// durCheck compares what the server holds for name with what its writer
// knows, then updates the writer's state to what survived. It reports
// whether a write in flight at the kill landed.
func durCheck(t *testing.T, round int, name string, s *durState, meta map[string]SecretResponse, values map[string]string) bool {
	t.Helper()
	m, found := meta[name]
	if !found {
		if s.acked > 0 && !s.deleting {
			t.Errorf("round %d: %s lost: version %d was acknowledged", round, name, s.acked)
		}
		*s = durState{next: s.next}
		return false
	}
	ver, err := strconv.Atoi(strings.TrimPrefix(m.Description, "ver="))
	value, delivered := values[name]
	switch {
	case err != nil || !strings.HasPrefix(m.Description, "ver="):
		t.Errorf("round %d: %s has a foreign description %q", round, name, m.Description)
	case !delivered || value != durValue(name, ver):
		t.Errorf("round %d: %s is half-present: description says version %d, the value does not match (delivered %v)",
			round, name, ver, delivered)
	case m.FilePath != durFile(name):
		t.Errorf("round %d: %s has file path %q", round, name, m.FilePath)
	case ver != s.acked && ver != s.pending:
		t.Errorf("round %d: %s holds version %d; acknowledged %d (0: none, or deleted), in flight %d",
			round, name, ver, s.acked, s.pending)
	case m.UpdatedAt.Before(m.CreatedAt):
		t.Errorf("round %d: %s updated_at before created_at", round, name)
	}
	landed := s.pending != 0 && ver == s.pending
	*s = durState{exists: true, acked: ver, next: s.next}
	return landed
}

// TestKillNineBatchAllOrNothing: three writers send batch imports of four
// secrets each while the server is killed with SIGKILL. After each restart
// every acknowledged batch is there in full, and a batch in flight is there
// in full or not at all.
func TestKillNineBatchAllOrNothing(t *testing.T) {
	const (
		rounds    = 6
		writers   = 3
		batchSize = 4
	)
	dataDir := t.TempDir()
	logs := &syncBuffer{}
	p := startServer(t, dataDir, logs)
	token := firstUserToken(t, p.url)
	var inFlightLanded, inFlight int
	for round := range rounds {
		var (
			acked   [writers]map[int]bool
			pending [writers]int
			acks    atomic.Int64
			killNow = make(chan struct{})
			once    sync.Once
			wg      sync.WaitGroup
		)
		killAfter := int64(2 + round%3) // stays under the 50-secret cap with the stragglers
		for w := range writers {
			acked[w], pending[w] = map[int]bool{}, -1
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; ; b++ {
					var content strings.Builder
					for i := range batchSize {
						fmt.Fprintf(&content, "B%d_%d_%d_%d=batch-value-%d-%d-%d\n", round, w, b, i, w, b, i)
					}
					pending[w] = b
					code, body := request(t, "POST", p.url+"/api/v2/users/me/secrets/batch", token,
						map[string]string{"format": "env", "content": content.String()})
					switch code {
					case -1:
						return // the server is gone; pending[w] stays set
					case 201:
						acked[w][b], pending[w] = true, -1
						if acks.Add(1) >= killAfter {
							once.Do(func() { close(killNow) })
						}
					default:
						t.Errorf("round %d writer %d batch %d: %d %s", round, w, b, code, body)
						once.Do(func() { close(killNow) })
						return
					}
				}
			}()
		}
		<-killNow
		p.kill()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		p = startServer(t, dataDir, logs)
		st, body := request(t, "GET", p.url+"/api/v2/users/me/secrets", token, nil)
		var list []SecretResponse
		if st != 200 || json.Unmarshal(body, &list) != nil {
			t.Fatalf("list: %d %s", st, body)
		}
		count := [writers]map[int]int{}
		for w := range count {
			count[w] = map[int]int{}
		}
		for _, s := range list {
			var r, w, b, i int
			if _, err := fmt.Sscanf(s.Name, "B%d_%d_%d_%d", &r, &w, &b, &i); err != nil || r != round || w >= writers {
				t.Fatalf("round %d: unexpected secret %q", round, s.Name)
			}
			count[w][b]++
		}
		for w := range writers {
			for b, n := range count[w] {
				if n != batchSize {
					t.Errorf("round %d: batch %d/%d is half-present: %d of %d secrets", round, w, b, n, batchSize)
				}
				if !acked[w][b] && b != pending[w] {
					t.Errorf("round %d: batch %d/%d exists but was never sent", round, w, b)
				}
			}
			for b := range acked[w] {
				if count[w][b] != batchSize {
					t.Errorf("round %d: acknowledged batch %d/%d has %d of %d secrets", round, w, b, count[w][b], batchSize)
				}
			}
			if pending[w] >= 0 {
				inFlight++
				if count[w][pending[w]] == batchSize {
					inFlightLanded++
				}
			}
		}
		// Make room under the 50-secret cap for the next round.
		for _, s := range list {
			if code, _ := request(t, "DELETE", p.url+"/api/v2/users/me/secrets/"+s.Name, token, nil); code != 204 {
				t.Fatalf("delete %s: %d", s.Name, code)
			}
		}
	}
	p.kill()
	t.Logf("%d rounds; %d batches in flight at a kill, %d of them landed whole", rounds, inFlight, inFlightLanded)
}
