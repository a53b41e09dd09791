//go:build linux

package initproc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervisor under test: with
// COURIER_INITPROC_HELPER set it runs Run on `sh -c $COURIER_INITPROC_SCRIPT`
// and exits with what Run returned.
func TestMain(m *testing.M) {
	if os.Getenv("COURIER_INITPROC_HELPER") == "1" {
		code, err := Run(Config{Path: "/bin/sh", Args: []string{"sh", "-c", os.Getenv("COURIER_INITPROC_SCRIPT")}})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(99)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// helper is a running supervisor; done is closed once err is set.
type helper struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startHelper(t *testing.T, script string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "COURIER_INITPROC_HELPER=1", "COURIER_INITPROC_SCRIPT="+script)
	// Files, not pipes: orphans keep inherited pipes open.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, done: make(chan struct{})}
	go func() { h.err = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.done
	})
	return h
}

// children lists the processes whose parent is pid, with their state
// letter (Z for a zombie) and command name.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		j := bytes.IndexByte(b, '(')
		if i < 0 || j < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			out[p] = f[0] + " " + string(b[j+1:i])
		}
	}
	return out
}

func waitExit(t *testing.T, h *helper, within time.Duration) int {
	t.Helper()
	select {
	case <-h.done:
		err := h.err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("the supervisor did not exit within %s", within)
		return -1
	}
}

// TestReapsOrphansAndForwardsSIGTERM: a child that leaves 50 orphans
// (background sleeps whose parent shell exits at once) — they are
// reparented to the supervisor, and once they end none is left a zombie;
// SIGTERM to the supervisor reaches the child, whose exit code (7, from
// its trap) the supervisor exits with.
func TestReapsOrphansAndForwardsSIGTERM(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	script := `for i in $(seq 50); do sh -c 'sleep 1 &'; done
trap 'exit 7' TERM
: > ` + ready + `
while :; do sleep 0.05; done`
	h := startHelper(t, script)
	sup := h.cmd.Process.Pid

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child script never got past spawning its orphans")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The orphans are the supervisor's children now.
	orphans := 0
	for _, c := range children(t, sup) {
		if strings.HasSuffix(c, " sleep") {
			orphans++
		}
	}
	if orphans == 0 {
		t.Fatalf("no orphaned sleep was reparented to the supervisor: %v", children(t, sup))
	}
	// After they end: only the script is left, and no zombie.
	var last map[int]string
	for {
		last = children(t, sup)
		zombie := false
		for _, c := range last {
			zombie = zombie || strings.HasPrefix(c, "Z")
		}
		if len(last) == 1 && !zombie {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orphans were reparented; after they ended the supervisor still has %d children: %v", orphans, len(last), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d orphans reparented and reaped", orphans)
	for _, c := range last {
		if !strings.HasSuffix(c, " sh") {
			t.Fatalf("the one child left is not the script: %v", last)
		}
	}
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, h, 10*time.Second); code != 7 {
		t.Fatalf("supervisor exit code %d after SIGTERM, want the child's 7", code)
	}
}

// TestExitStatusOfASignalledChild: a child ended by SIGKILL makes the
// supervisor exit 128+9, and a plain exit code passes through unchanged.
func TestExitStatusOfASignalledChild(t *testing.T) {
	h := startHelper(t, `kill -KILL $$`)
	if code := waitExit(t, h, 10*time.Second); code != 137 {
		t.Fatalf("exit code %d, want 137", code)
	}
	h = startHelper(t, `exit 3`)
	if code := waitExit(t, h, 10*time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := Run(Config{}); !errors.Is(err, ErrNoPath) {
		t.Fatalf("Run without a path: %v, want ErrNoPath", err)
	}
	if _, err := Run(Config{Path: "/bin/true"}); err == nil {
		t.Fatal("Run without Args: no error")
	}
}
