package cli_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ttySession runs courier on a pseudo-terminal and collects what it shows.
type ttySession struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	mu   sync.Mutex // guards out
	out  bytes.Buffer
	done chan struct{}
}

func startTTY(t *testing.T, c *cli, args ...string) *ttySession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, courierBin, args...)
	cmd.Env = c.env
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	s := &ttySession{t: t, cmd: cmd, ptmx: ptmx, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ptmx.Close(); <-s.done })
	return s
}

func (s *ttySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// waitFor polls until cond holds; the child's progress is only visible
// through the terminal, so there is nothing to block on.
func (s *ttySession) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; output so far %q", what, s.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoOff reports whether the child turned terminal echo off (Linux shares
// the termios between the two ends of a pty).
func (s *ttySession) echoOff() bool {
	tio, err := unix.IoctlGetTermios(int(s.ptmx.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&unix.ECHO == 0
}

func (s *ttySession) wait() int {
	s.t.Helper()
	err := s.cmd.Wait()
	<-s.done
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return 0
}

func TestCreatePromptsWithoutEchoOnATerminal(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	s := startTTY(t, c, "secret", "create", "typed", "--env", "TYPED")
	s.waitFor("the prompt", func() bool { return strings.Contains(s.output(), "Value") })
	s.waitFor("echo off", s.echoOff)
	if _, err := io.WriteString(s.ptmx, canary+"\r"); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(); code != 0 {
		t.Fatalf("exit %d: %q", code, s.output())
	}
	if v, _ := srv.value("typed"); v != canary {
		t.Errorf("stored %q, want the typed value without its newline", v)
	}
	if strings.Contains(s.output(), canary) {
		t.Errorf("typed value echoed: %q", s.output())
	}
}

func TestDeleteAsksOnATerminal(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	c.ok(str(canary), "secret", "create", "keep")
	c.ok(str(canary), "secret", "create", "drop")
	for _, tc := range []struct {
		name, answer string
		gone         bool
	}{{"keep", "n", false}, {"drop", "yes", true}} {
		s := startTTY(t, c, "secret", "delete", tc.name)
		s.waitFor("the question", func() bool { return strings.Contains(s.output(), "[y/N]") })
		if _, err := io.WriteString(s.ptmx, tc.answer+"\r"); err != nil {
			t.Fatal(err)
		}
		if code := s.wait(); code != 0 {
			t.Fatalf("exit %d: %q", code, s.output())
		}
		if _, ok := srv.value(tc.name); ok == tc.gone {
			t.Errorf("%s: answered %q, still there = %t", tc.name, tc.answer, ok)
		}
	}
}
