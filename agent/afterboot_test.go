package agent

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/controlplane/store"
)

// AfterBoot runs once, after the startup scripts and the ready report; the
// scripts' output still reaches the control plane (the forwarder sleeps
// when it has nothing to send instead of polling).
func TestAfterBootOnceAfterReadyAndOutputForwarded(t *testing.T) {
	c := newCP(t, []proto.Script{{Name: "hello", TimeoutSeconds: 10, Script: "echo hello-from-boot"}})
	c.up()
	var calls atomic.Int32
	var stateAtCall atomic.Value
	_, _, stop := startAgentWith(t, c, func(cfg *Config) {
		cfg.AfterBoot = func() {
			// The state is stored before the call is counted: the test
			// reads it as soon as it sees the count.
			ws, err := c.st.WorkspaceByID(context.Background(), "w")
			if err != nil {
				t.Errorf("reading the workspace in AfterBoot: %v", err)
			}
			stateAtCall.Store(ws.State)
			calls.Add(1)
		}
	})
	eventually(t, "AfterBoot", func() bool { return calls.Load() > 0 })
	if s, _ := stateAtCall.Load().(string); s != proto.StateReady {
		t.Errorf("state when AfterBoot ran = %q, want %q", s, proto.StateReady)
	}
	eventually(t, "the script's output at the control plane", func() bool {
		lines, _ := c.st.WorkspaceLogs(context.Background(), "w", store.LogQuery{})
		for _, l := range lines {
			if strings.Contains(l.Text, "hello-from-boot") {
				return true
			}
		}
		return false
	})
	c.cut()
	stop()
	if n := calls.Load(); n != 1 {
		t.Errorf("AfterBoot ran %d times, want once per agent process", n)
	}
}
