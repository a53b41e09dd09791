//go:build windows

package sshd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/windows"

	"github.com/courierhq/courier/agent/spawn"
)

// skipUnlessUnixShell skips the harness's tests: they drive /bin/sh with
// POSIX syntax. The Windows sessions are tested below, with cmd.exe and
// this test binary as a console program.
func skipUnlessUnixShell(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("a Unix-shell test (/bin/sh, POSIX syntax); Windows sessions are TestWindows*")
	}
}

// helperEnv makes this test binary act as a console program (see init):
// it prints its console's size for each line it reads.
const helperEnv = "COURIER_SSHD_CONSOLE_HELPER"

func init() {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	buf := make([]byte, 256)
	for {
		var info windows.ConsoleScreenBufferInfo
		if err := windows.GetConsoleScreenBufferInfo(windows.Stdout, &info); err != nil {
			fmt.Printf("size=error:%v\r\n", err)
		} else {
			w := info.Window.Right - info.Window.Left + 1
			h := info.Window.Bottom - info.Window.Top + 1
			fmt.Printf("size=%dx%d\r\n", w, h)
		}
		n, err := os.Stdin.Read(buf)
		if err != nil || strings.Contains(string(buf[:n]), "q") {
			os.Exit(5)
		}
	}
}

func newWindowsHarness(t *testing.T) *harness {
	t.Helper()
	home := t.TempDir()
	core, logs := observer.New(zap.DebugLevel)
	sp, err := spawn.New(spawn.Config{
		Base:      append(os.Environ(), "COURIER_AGENT_TOKEN="+canaryToken, helperEnv+"=1"),
		Home:      home,
		WaitDelay: time.Second,
		Logger:    zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	sp.Update(nil, map[string]string{"Secret_Api": canarySecret})
	key, err := LoadOrCreateHostKey(afero.NewOsFs(), filepath.Join(t.TempDir(), "host"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Spawner: sp, HostKey: key, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, e := range logs.All() {
			if line := fmt.Sprintf("%s %v", e.Message, e.ContextMap()); strings.Contains(line, canarySecret) {
				t.Errorf("log leaks a canary: %s", line)
			}
		}
	})
	return &harness{srv: srv, home: home, logs: logs}
}

// exitCode is the SSH exit status of err (0 for nil).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *gossh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitStatus()
	}
	t.Fatalf("session: %v", err)
	return -1
}

// Exec without a terminal, through cmd.exe: env (names without case),
// the agent token kept out, exit codes.
func TestWindowsExec(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newWindowsHarness(t)
			client := tr.dial(h, t)
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := sess.Output(`echo [%SECRET_API%] [%COURIER_AGENT_TOKEN%]`)
			if err != nil {
				t.Fatal(err)
			}
			if want := "[" + canarySecret + "] [%COURIER_AGENT_TOKEN%]\r\n"; string(out) != want {
				t.Errorf("exec printed %q, want %q", out, want)
			}
			sess, err = client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if got := exitCode(t, sess.Run("exit 42")); got != 42 {
				t.Errorf("exit status %d, want 42", got)
			}
		})
	}
}

// underWine is set by CI (.ci/run) when it runs this binary under Wine.
func underWine() bool { return os.Getenv("COURIER_WINE") == "1" }

// A terminal session on a pseudo-console: it starts on the console, takes
// window changes, and its exit code travels back. This much Wine does.
func TestWindowsConPTYExitCode(t *testing.T) {
	h := newWindowsHarness(t)
	client := h.pipeClient(t)
	for _, code := range []int{0, 3} {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.RequestPty("xterm-256color", 30, 100, nil); err != nil {
			t.Fatal(err)
		}
		if err := sess.Start(fmt.Sprintf("exit %d", code)); err != nil {
			t.Fatal(err)
		}
		_ = sess.WindowChange(40, 120) // may race the exit: either is fine
		if got := exitCode(t, sess.Wait()); got != code {
			t.Errorf("exit status %d, want %d", got, code)
		}
		sess.Close()
	}
}

// An interactive session on a pseudo-console: output, the size asked for,
// a window change, input, and the exit code.
//
// Not under Wine. Wine 8.0 creates the pseudo-console (its conhost
// --headless starts) and takes the attribute (WINEDEBUG=+process shows
// "PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE ... reference"), but a child started
// as Microsoft documents it, with STARTF_USESTDHANDLES and null standard
// handles, keeps null handles instead of the pseudo-console's: its output
// never reaches the console's pipe (cmd /c echo: 0 bytes read). Started
// without STARTF_USESTDHANDLES, it writes to the parent's own stdout
// instead. So no output or size can be read back there;
// TestWindowsConPTYExitCode covers what Wine does.
func TestWindowsConPTY(t *testing.T) {
	if underWine() {
		t.Skip("Wine 8.0 gives a pseudo-console's child null standard handles, so its output never arrives (see the comment); needs a real Windows kernel")
	}
	h := newWindowsHarness(t)
	client := h.pipeClient(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm-256color", 30, 100, nil); err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(`"` + exe + `"`); err != nil {
		t.Fatal(err)
	}
	out := newLineReader(stdout)
	at := out.waitFor(t, 0, "size=100x30")
	if err := sess.WindowChange(40, 120); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdin, "x\r")
	out.waitFor(t, at, "size=120x40")
	_, _ = io.WriteString(stdin, "q\r")
	if got := exitCode(t, sess.Wait()); got != 5 {
		t.Errorf("exit status %d, want 5", got)
	}
}
