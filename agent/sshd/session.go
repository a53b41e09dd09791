package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	gliderssh "github.com/gliderlabs/ssh"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/spawn"
)

// exitStartFailed is the exit status of a session whose process could not
// be started (OpenSSH uses 255 for its own failures too).
const exitStartFailed = 255

// signals maps SSH signal names (RFC 4254 §6.10) to POSIX signals.
var signals = map[gliderssh.Signal]syscall.Signal{
	gliderssh.SIGABRT: syscall.SIGABRT,
	gliderssh.SIGALRM: syscall.SIGALRM,
	gliderssh.SIGFPE:  syscall.SIGFPE,
	gliderssh.SIGHUP:  syscall.SIGHUP,
	gliderssh.SIGILL:  syscall.SIGILL,
	gliderssh.SIGINT:  syscall.SIGINT,
	gliderssh.SIGKILL: syscall.SIGKILL,
	gliderssh.SIGPIPE: syscall.SIGPIPE,
	gliderssh.SIGQUIT: syscall.SIGQUIT,
	gliderssh.SIGSEGV: syscall.SIGSEGV,
	gliderssh.SIGTERM: syscall.SIGTERM,
}

// handle is the gliderlabs session handler: one shell or exec request.
func (s *Server) handle(sess gliderssh.Session) {
	if !s.enter() {
		_ = sess.Exit(exitStartFailed)
		return
	}
	defer s.sessions.Done()

	sigs := make(chan gliderssh.Signal, 16)
	sess.Signals(sigs)
	// Back to buffering before we return, so a late "signal" request never
	// blocks the library's request loop on a channel nobody reads.
	defer sess.Signals(nil)

	_, _, isPty := sess.Pty()
	kind := "exec"
	if sess.RawCommand() == "" {
		kind = "shell"
	}
	log := s.log.With(zap.String("kind", kind), zap.Bool("pty", isPty),
		zap.String("remote", sess.RemoteAddr().String()))
	log.Info("ssh session started")
	s.metrics.inc(kindSession, resultOK)
	res := s.run(sess, sigs, log)
	if res.signal != "" {
		log.Info("ssh session ended", zap.String("exit_signal", res.signal), zap.Bool("core_dumped", res.core))
	} else {
		log.Info("ssh session ended", zap.Int("exit_status", res.code))
	}
	sendExit(sess, res)
}

// run starts the session's process, pumps its I/O and returns its exit
// status.
func (s *Server) run(sess gliderssh.Session, sigs <-chan gliderssh.Signal, log *zap.Logger) exitResult {
	ctx := sess.Context()
	ptyReq, winCh, isPty := sess.Pty()
	spec := spawn.Spec{
		Command: sess.RawCommand(),
		Session: s.sessionVars(sess),
		Client:  s.clientEnv(sess.Environ(), log),
	}
	if spec.Command == "" {
		spec.Login = true
	}
	if gliderssh.AgentRequested(sess) {
		if s.currentPolicy().DisableForwarding {
			s.metrics.inc(kindAgent, resultRefused)
			log.Debug("ssh forwarding refused: turned off for this workspace", zap.String("kind", kindAgent))
		} else if sock, stop, err := s.forwardAgent(sess, log); err != nil {
			s.metrics.inc(kindAgent, resultFailed)
			log.Warn("ssh agent forwarding could not start", zap.Error(err))
		} else {
			defer stop()
			spec.Session["SSH_AUTH_SOCK"] = sock
			log.Debug("ssh agent forwarding started", zap.String("kind", kindAgent))
		}
	}
	// sshd builds each session's environment afresh; the agent's own
	// (whatever started it) is the base layer here, so what describes that
	// starter's terminal or login is dropped: TERM (set again below for a
	// pty, as sshd does), its window size, SHLVL (an inherited one stops
	// bash from reading ~/.bashrc for `ssh ws cmd`), tmux and screen, an
	// agent socket, a display.
	spec.Unset = starterVars
	if isPty {
		if ptyReq.Term != "" {
			spec.Session["TERM"] = ptyReq.Term
		}
		if conPTY { // Windows: a pseudo-console, not a pty (conpty_windows.go)
			return s.runConPTY(ctx, sess, spec, ptyReq.Window, winCh, sigs, log)
		}
		return s.runPty(ctx, sess, spec, ptyReq.Window, winCh, sigs, log)
	}
	return s.runPlain(ctx, sess, spec, sigs, log)
}

// runPlain runs a session without a terminal: stdin, stdout and stderr are
// the channel's.
func (s *Server) runPlain(ctx context.Context, sess gliderssh.Session, spec spawn.Spec, sigs <-chan gliderssh.Signal, log *zap.Logger) exitResult {
	var stdin io.WriteCloser
	cmd, err := s.cfg.Spawner.Start(ctx, spec, func(c *exec.Cmd) error {
		c.Stdout, c.Stderr = sess, sess.Stderr()
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
		return c.Start()
	})
	if err != nil {
		return s.startFailed(sess, err, log)
	}
	// Our own copy, not exec's: a client that never closes stdin must not
	// hold Wait up. The pipe is closed by Wait; the copy ends when the
	// channel closes.
	go func() {
		_, _ = io.Copy(stdin, sess)
		_ = stdin.Close()
	}()
	stop := forwardSignals(cmd, sigs)
	err = cmd.Wait()
	stop()
	return exitStatus(err)
}

// runPty runs a session on a new pseudo-terminal of the requested size.
func (s *Server) runPty(ctx context.Context, sess gliderssh.Session, spec spawn.Spec, win gliderssh.Window, winCh <-chan gliderssh.Window, sigs <-chan gliderssh.Signal, log *zap.Logger) exitResult {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return s.startFailed(sess, fmt.Errorf("open pty: %w", err), log)
	}
	_ = pty.Setsize(ptmx, winsize(win))
	spec.Session["SSH_TTY"] = tty.Name()
	cmd, err := s.cfg.Spawner.Start(ctx, spec, func(c *exec.Cmd) error {
		c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
		// A new session with the pty as its controlling terminal; the
		// child leads its own process group, so group signals still work.
		c.SysProcAttr = ttySysProcAttr()
		return c.Start()
	})
	_ = tty.Close()
	if err != nil {
		_ = ptmx.Close()
		return s.startFailed(sess, err, log)
	}

	// mu guards closed: window changes may arrive until the channel closes.
	var mu sync.Mutex
	closed := false
	go func() {
		for w := range winCh {
			mu.Lock()
			if !closed {
				_ = pty.Setsize(ptmx, winsize(w))
			}
			mu.Unlock()
		}
	}()
	// A client that goes away hangs up the terminal (SIGHUP to the
	// foreground job, as with OpenSSH); the spawner's SIGTERM follows.
	stopHangup := context.AfterFunc(ctx, func() {
		_ = signalGroup(cmd, syscall.SIGHUP)
		mu.Lock()
		if !closed {
			closed = true
			_ = ptmx.Close()
		}
		mu.Unlock()
	})
	defer stopHangup()
	// "break" (ssh's ~B) is a BREAK on the terminal, as sshd sends it
	// (tcsendbreak): with BRKINT the line discipline interrupts the
	// foreground job. The library answers "break" requests with no unless
	// a channel is set.
	breaks, stopBreaks := make(chan bool, 1), make(chan struct{})
	sess.Break(breaks)
	go func() {
		for {
			select {
			case <-breaks:
				mu.Lock()
				if !closed {
					_ = sendBreak(ptmx)
				}
				mu.Unlock()
			case <-stopBreaks:
				return
			}
		}
	}()
	defer func() { sess.Break(nil); close(stopBreaks) }()
	go func() { _, _ = io.Copy(ptmx, sess) }()
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(sess, ptmx)
		close(outDone)
	}()

	stop := forwardSignals(cmd, sigs)
	err = cmd.Wait()
	stopHangup()
	stop()
	// The output ends (EIO) once no process holds the terminal; one that
	// does (a background job) gets the spawner's WaitDelay.
	t := time.NewTimer(s.cfg.Spawner.WaitDelay())
	select {
	case <-outDone:
	case <-t.C:
	}
	t.Stop()
	mu.Lock()
	if !closed {
		closed = true
		_ = ptmx.Close()
	}
	mu.Unlock()
	<-outDone
	return exitStatus(err)
}

// startFailed tells the client why its session has no process.
func (s *Server) startFailed(sess gliderssh.Session, err error, log *zap.Logger) exitResult {
	log.Warn("ssh session could not start", zap.Error(err))
	_, _ = fmt.Fprintf(sess.Stderr(), "courier: cannot start session: %v\r\n", err)
	return exitResult{code: exitStartFailed}
}

// forwardSignals delivers SSH signal requests to cmd's process group until
// stop is called.
func forwardSignals(cmd *exec.Cmd, sigs <-chan gliderssh.Signal) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case name := <-sigs:
				sig, ok := signals[name]
				if !ok {
					continue
				}
				_ = signalGroup(cmd, sig)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// exitResult is how a session's process ended: an exit status, or the
// signal that killed it.
type exitResult struct {
	code int
	// signal is the RFC 4254 name of the signal that killed the process
	// ("TERM", without "SIG"); "" when it exited.
	signal string
	// core is set when the killed process dumped core.
	core bool
}

// exitStatus turns Wait's error into how the process ended. A process
// killed by a signal is reported as that signal, as OpenSSH's sshd does
// (session.c sends "exit-signal"), so the client can tell "killed by TERM"
// from "exited 143"; a signal without an RFC 4254 name is reported as the
// shell would, 128+N.
func exitStatus(err error) exitResult {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return exitResult{}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return exitResult{code: exitStartFailed}
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if name := signalName(ws.Signal()); name != "" {
			return exitResult{code: 128 + int(ws.Signal()), signal: name, core: ws.CoreDump()}
		}
		return exitResult{code: 128 + int(ws.Signal())}
	}
	return exitResult{code: ee.ExitCode()}
}

// signalName returns sig's RFC 4254 name, or "".
func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return string(name)
		}
	}
	return ""
}

// exitSignalMsg is the payload of an "exit-signal" request (RFC 4254
// §6.10).
type exitSignalMsg struct {
	Signal     string
	CoreDumped bool
	Message    string
	Language   string
}

// sendExit reports res to the client and closes the channel: "exit-signal"
// for a process killed by a signal, "exit-status" otherwise.
func sendExit(sess gliderssh.Session, res exitResult) {
	if res.signal == "" {
		_ = sess.Exit(res.code)
		return
	}
	// gliderlabs has no Exit for signals; the channel request is what
	// sshd sends. Closing the channel makes the library's own Exit(0),
	// called when the handler returns, a no-op on the wire.
	_, _ = sess.SendRequest("exit-signal", false, gossh.Marshal(&exitSignalMsg{Signal: res.signal, CoreDumped: res.core}))
	_ = sess.Close()
}

func winsize(w gliderssh.Window) *pty.Winsize {
	return &pty.Winsize{Rows: clampU16(w.Height), Cols: clampU16(w.Width)}
}

func clampU16(n int) uint16 {
	switch {
	case n < 0:
		return 0
	case n > 0xffff:
		return 0xffff
	}
	return uint16(n)
}

// sessionVars are the variables OpenSSH sets for a session.
// starterVars are the variables of the agent's own environment that
// describe the terminal or login session it was started from, not the
// workspace: no SSH session inherits them.
var starterVars = []string{"TERM", "LINES", "COLUMNS", "SHLVL", "OLDPWD", "PWD", "_",
	"SSH_AUTH_SOCK", "SSH_TTY", "SSH_CLIENT", "SSH_CONNECTION", "SSH_ORIGINAL_COMMAND",
	"DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "TMUX", "TMUX_PANE", "STY", "WINDOW",
	"XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS", "XDG_VTNR", "XDG_SEAT"}

func (s *Server) sessionVars(sess gliderssh.Session) map[string]string {
	name := currentUser()
	vars := map[string]string{
		"HOME":    s.cfg.Spawner.Home(),
		"SHELL":   s.cfg.Spawner.Shell(),
		"USER":    name,
		"LOGNAME": name,
	}
	if runtime.GOOS != "windows" {
		vars["MAIL"] = "/var/mail/" + name // sshd's _PATH_MAILDIR
	}
	rh, rp := hostPort(sess.RemoteAddr())
	lh, lp := hostPort(sess.LocalAddr())
	vars["SSH_CLIENT"] = rh + " " + rp + " " + lp
	vars["SSH_CONNECTION"] = rh + " " + rp + " " + lh + " " + lp
	return vars
}

// clientEnv keeps the client-sent variables AcceptEnv allows.
func (s *Server) clientEnv(env []string, log *zap.Logger) map[string]string {
	out := make(map[string]string)
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) || !accepted(s.cfg.AcceptEnv, k) {
			log.Debug("client-sent variable refused", zap.String("name", sanitizeName(k)))
			continue
		}
		out[k] = v
	}
	return out
}

func accepted(patterns []string, name string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// sanitizeName bounds a client-chosen name before it is logged.
func sanitizeName(k string) string {
	if len(k) > 64 {
		k = k[:64]
	}
	return strings.ToValidUTF8(k, "?")
}

func hostPort(a net.Addr) (string, string) {
	if a != nil {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			return h, p
		}
	}
	return "0.0.0.0", "0"
}

// currentUser is the name of the user the agent (and so every session)
// runs as.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}
