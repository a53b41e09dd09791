//go:build windows

package sshd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/charmbracelet/x/conpty"
	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	"golang.org/x/sys/windows"

	"github.com/courierhq/courier/agent/spawn"
)

// conPTY is true: Windows terminals are pseudo-consoles.
const conPTY = true

// runConPTY runs a session on a new Windows pseudo-console (ConPTY) of the
// requested size: the child's console is the pseudo-console, whose VT
// output and input travel over two pipes to and from the channel. Window
// changes resize it; the exit status is the child's.
//
// os/exec cannot attach a pseudo-console (it takes a process-thread
// attribute SysProcAttr does not carry), so the spawner's prepared Cmd —
// path, arguments, environment, directory, creation flags — is started by
// conpty.Spawn, and the process is adopted into the Cmd so Wait and the
// spawner's signals work as for any child.
func (s *Server) runConPTY(ctx context.Context, sess gliderssh.Session, spec spawn.Spec, win gliderssh.Window, winCh <-chan gliderssh.Window, sigs <-chan gliderssh.Signal, log *zap.Logger) exitResult {
	cpty, err := conpty.New(consoleDim(win.Width, 80), consoleDim(win.Height, 24), 0)
	if err != nil {
		return s.startFailed(sess, fmt.Errorf("open pseudo-console: %w", err), log)
	}
	// mu guards closed: window changes may arrive until the channel closes.
	var mu sync.Mutex
	closed := false
	closeConsole := func() {
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			closed = true
			_ = cpty.Close()
		}
	}
	cmd, err := s.cfg.Spawner.Start(ctx, spec, func(c *exec.Cmd) error {
		return startOnConsole(cpty, c)
	})
	if err != nil {
		closeConsole()
		return s.startFailed(sess, err, log)
	}
	go func() {
		for w := range winCh {
			mu.Lock()
			if !closed {
				_ = cpty.Resize(consoleDim(w.Width, 80), consoleDim(w.Height, 24))
			}
			mu.Unlock()
		}
	}()
	// A client that goes away ends the session: Windows has no hangup.
	stopKill := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stopKill()
	go func() { _, _ = io.Copy(cpty, sess) }()
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(sess, cpty)
		close(outDone)
	}()

	stop := forwardSignals(cmd, sigs)
	err = cmd.Wait()
	stopKill()
	stop()
	// Closing the pseudo-console flushes its last output and ends the
	// output pipe; a console that does not (a process still attached)
	// gets the spawner's WaitDelay.
	go closeConsole()
	t := time.NewTimer(s.cfg.Spawner.WaitDelay())
	select {
	case <-outDone:
	case <-t.C:
	}
	t.Stop()
	return exitStatus(err)
}

// startOnConsole starts c attached to cpty and adopts the process into c.
func startOnConsole(cpty *conpty.ConPty, c *exec.Cmd) error {
	pid, handle, err := cpty.Spawn(c.Path, c.Args, &syscall.ProcAttr{Dir: c.Dir, Env: c.Env, Sys: c.SysProcAttr})
	if err != nil {
		return err
	}
	// The handle keeps the PID from being reused until FindProcess has its
	// own.
	defer windows.CloseHandle(windows.Handle(handle))
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("adopt process %d: %w", pid, err)
	}
	c.Process = p
	return nil
}

// consoleDim is n as a console dimension (1..32767), def when unset.
func consoleDim(n, def int) int {
	switch {
	case n <= 0:
		return def
	case n > 0x7fff:
		return 0x7fff
	}
	return n
}
