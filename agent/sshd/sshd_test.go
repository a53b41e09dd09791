package sshd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/spf13/afero"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent/spawn"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sftpTestArg {
		os.Exit(sftpTestServer())
	}
	goleak.VerifyTestMain(m)
}

const (
	canarySecret = "canary-ssh-secret-5d1e"
	canaryToken  = "canary-ssh-agent-token-0b7c"
)

type harness struct {
	srv  *Server
	home string
	logs *observer.ObservedLogs
	// events records what the server told Config.OnEvent (events_test.go).
	events *eventLog
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	skipUnlessUnixShell(t)
	home := t.TempDir()
	core, logs := observer.New(zap.DebugLevel)
	sp, err := spawn.New(spawn.Config{
		Base: append([]string{"PATH=" + os.Getenv("PATH"), "COURIER_AGENT_TOKEN=" + canaryToken, "TERM=" + agentTERM},
			starterEnv...),
		Shell:     "/bin/sh",
		Home:      home,
		WaitDelay: time.Second,
		Logger:    zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	sp.Update(map[string]string{"FROM_TEMPLATE": "t", "SECRET_API": "template-value"},
		map[string]string{"SECRET_API": canarySecret, "LC_SECRET": canarySecret})
	key, err := LoadOrCreateHostKey(afero.NewMemMapFs(), "/keys/host")
	if err != nil {
		t.Fatal(err)
	}
	events := &eventLog{}
	srv, err := New(Config{Spawner: sp, HostKey: key, Logger: zap.New(core), SFTPCommand: []string{os.Args[0], sftpTestArg},
		OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, e := range logs.All() {
			line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
			if strings.Contains(line, canarySecret) || strings.Contains(line, canaryToken) {
				t.Errorf("log leaks a canary: %s", line)
			}
		}
	})
	return &harness{srv: srv, home: home, logs: logs, events: events}
}

func clientConfig() *gossh.ClientConfig {
	return &gossh.ClientConfig{User: "coder", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
}

// pipeClient connects through HandleConn over a yamux stream on a net.Pipe,
// the shape of production (the control plane opens yamux streams to the
// agent). A bare net.Pipe cannot carry SSH: both ends write their version
// line first and net.Pipe has no buffer.
func (h *harness) pipeClient(t *testing.T) *gossh.Client {
	t.Helper()
	c1, c2 := net.Pipe()
	ycfg := yamux.DefaultConfig()
	ycfg.LogOutput = io.Discard
	ycfg.EnableKeepAlive = false
	cs, err := yamux.Client(c1, ycfg)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := yamux.Server(c2, ycfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		stream, err := ss.Accept()
		if err != nil {
			return
		}
		_ = h.srv.HandleConn(context.Background(), stream)
	}()
	stream, err := cs.Open()
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := gossh.NewClientConn(stream, "pipe", clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	client := gossh.NewClient(conn, chans, reqs)
	t.Cleanup(func() {
		client.Close()
		cs.Close()
		ss.Close()
		wg.Wait()
	})
	return client
}

// tcpServe serves on a loopback listener and returns its address.
func (h *harness) tcpServe(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = h.srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func (h *harness) tcpClient(t *testing.T) *gossh.Client {
	t.Helper()
	client, err := gossh.Dial("tcp", h.tcpServe(t), clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

type transport struct {
	name string
	dial func(*harness, *testing.T) *gossh.Client
}

var transports = []transport{
	{"pipe", (*harness).pipeClient},
	{"tcp", (*harness).tcpClient},
}

func parseEnv(out string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestExecEnv(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			sess, err := tr.dial(h, t).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			for k, v := range map[string]string{
				"LANG":          "C.UTF-8",     // accepted
				"SECRET_API":    "client-evil", // refused by AcceptEnv
				"LC_SECRET":     "client-evil", // accepted name, but a secret sets it
				"LD_PRELOAD":    "/tmp/x.so",   // refused
				"FROM_TEMPLATE": "client",      // refused
			} {
				_ = sess.Setenv(k, v)
			}
			out, err := sess.Output("env")
			if err != nil {
				t.Fatal(err)
			}
			env := parseEnv(string(out))
			want := map[string]string{
				"SECRET_API":    canarySecret,
				"LC_SECRET":     canarySecret,
				"FROM_TEMPLATE": "t",
				"LANG":          "C.UTF-8",
				"HOME":          h.home,
				"SHELL":         "/bin/sh",
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
			for _, k := range []string{"USER", "LOGNAME", "SSH_CONNECTION", "SSH_CLIENT"} {
				if env[k] == "" {
					t.Errorf("%s not set", k)
				}
			}
			for _, k := range []string{"COURIER_AGENT_TOKEN", "LD_PRELOAD", "SSH_TTY"} {
				if _, ok := env[k]; ok {
					t.Errorf("%s set in a session without a pty", k)
				}
			}
			if tr.name == "tcp" && !strings.HasPrefix(env["SSH_CONNECTION"], "127.0.0.1 ") {
				t.Errorf("SSH_CONNECTION = %q", env["SSH_CONNECTION"])
			}
		})
	}
}

// starterEnv is what the harness agent inherited from the terminal that
// "started" it: no session may see any of it.
var starterEnv = []string{"SHLVL=3", "LINES=10", "COLUMNS=20", "TMUX=/tmp/tmux-0/default,1,0", "STY=123.pts",
	"SSH_AUTH_SOCK=/tmp/starter.sock", "SSH_TTY=/dev/pts/starter", "DISPLAY=:5", "OLDPWD=/starter"}

// agentTERM is the harness agent's own TERM, which a session without a
// terminal must not inherit.
const agentTERM = "xterm-of-the-agent"

func TestExitStatus(t *testing.T) {
	cases := []struct {
		cmd        string
		want       int
		wantSignal string // exit-signal's name; "" for exit-status
	}{
		{"true", 0, ""},
		{"exit 42", 42, ""},
		{"exit 143", 143, ""}, // a status that looks like TERM is still a status
		{"/no/such/program", 127, ""},
		{"kill -KILL $$", 128 + 9, "KILL"},
		{"kill -TERM $$", 128 + 15, "TERM"},
		// x/crypto's client knows no number for USR2 and reports 128.
		{"kill -USR2 $$", 128, "USR2"},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			client := tr.dial(h, t)
			for _, c := range cases {
				sess, err := client.NewSession()
				if err != nil {
					t.Fatal(err)
				}
				err = sess.Run(c.cmd)
				got, gotSig := 0, ""
				var ee *gossh.ExitError
				if errors.As(err, &ee) {
					got, gotSig = ee.ExitStatus(), ee.Signal()
				} else if err != nil {
					t.Fatalf("%q: %v", c.cmd, err)
				}
				if got != c.want || gotSig != c.wantSignal {
					t.Errorf("%q: exit status %d signal %q, want %d %q", c.cmd, got, gotSig, c.want, c.wantSignal)
				}
				sess.Close()
			}
		})
	}
}

// ptySession starts an interactive shell on a pty and returns its stdin and
// a reader of its output.
func ptySession(t *testing.T, client *gossh.Client, rows, cols int) (*gossh.Session, io.WriteCloser, *lineReader) {
	t.Helper()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", rows, cols, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return sess, stdin, newLineReader(stdout)
}

// lineReader collects a pty's output and waits for a substring.
type lineReader struct {
	mu   sync.Mutex
	buf  strings.Builder
	more chan struct{}
	done chan struct{}
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		br := bufio.NewReader(r)
		for {
			b, err := br.ReadByte()
			if err != nil {
				return
			}
			lr.mu.Lock()
			lr.buf.WriteByte(b)
			lr.mu.Unlock()
			select {
			case lr.more <- struct{}{}:
			default:
			}
		}
	}()
	return lr
}

// waitFor waits until the output from offset on contains s and returns the
// offset after it.
func (lr *lineReader) waitFor(t *testing.T, from int, s string) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		lr.mu.Lock()
		all := lr.buf.String()
		lr.mu.Unlock()
		if i := strings.Index(all[from:], s); i >= 0 {
			return from + i + len(s)
		}
		select {
		case <-lr.more:
		case <-lr.done:
			lr.mu.Lock()
			all = lr.buf.String()
			lr.mu.Unlock()
			if i := strings.Index(all[from:], s); i >= 0 {
				return from + i + len(s)
			}
			t.Fatalf("output ended without %q; got %q", s, all)
		case <-deadline:
			t.Fatalf("no %q in output %q", s, all)
		}
	}
}

func TestPtyShell(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			sess, stdin, out := ptySession(t, tr.dial(h, t), 24, 80)
			defer sess.Close()
			// printf with split strings so the echo of the input, if any,
			// cannot match.
			_, _ = io.WriteString(stdin, `printf '%s:%s:%s\n' "h""i" "$TERM" "$SECRET_API"; test -t 0 && echo "tty""=$SSH_TTY"`+"\n")
			out.waitFor(t, 0, "hi:xterm-256color:"+canarySecret)
			out.waitFor(t, 0, "tty=/dev/pts/")
			fmt.Fprint(stdin, "echo hi; exit\n")
			if err := sess.Wait(); err != nil {
				t.Fatalf("Wait = %v", err)
			}
		})
	}
}

func TestPtyWindowChange(t *testing.T) {
	h := newHarness(t)
	sess, stdin, out := ptySession(t, h.pipeClient(t), 40, 80)
	defer sess.Close()
	fmt.Fprint(stdin, "stty size\n")
	off := out.waitFor(t, 0, "40 80")
	if err := sess.WindowChange(50, 120); err != nil {
		t.Fatal(err)
	}
	// The resize is applied asynchronously; ask until the shell sees it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fmt.Fprint(stdin, "stty size\n")
		lr := out
		lr.mu.Lock()
		all := lr.buf.String()
		lr.mu.Unlock()
		if strings.Contains(all[off:], "50 120") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("window change not seen; output %q", all[off:])
		}
		select {
		case <-out.more:
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprint(stdin, "exit 3\n")
	var ee *gossh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("Wait = %v, want exit status 3", err)
	}
}

func TestSignalForwarded(t *testing.T) {
	for _, sig := range []gossh.Signal{gossh.SIGINT, gossh.SIGTERM, gossh.SIGUSR1} {
		t.Run(string(sig), func(t *testing.T) {
			h := newHarness(t)
			sess, err := h.pipeClient(t).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			stdout, err := sess.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.Start(fmt.Sprintf("trap 'echo got; exit 9' %s; echo ready; while :; do sleep 0.05; done", sig)); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(stdout)
			if l, _ := r.ReadString('\n'); l != "ready\n" {
				t.Fatalf("first line %q", l)
			}
			if err := sess.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if l, _ := r.ReadString('\n'); l != "got\n" {
				t.Fatalf("after signal: %q", l)
			}
			var ee *gossh.ExitError
			if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 9 {
				t.Fatalf("Wait = %v, want exit status 9", err)
			}
		})
	}
}

func TestCloseEndsSessions(t *testing.T) {
	h := newHarness(t)
	client := h.tcpClient(t)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("echo ready; exec sleep 1000"); err != nil {
		t.Fatal(err)
	}
	if l, _ := bufio.NewReader(stdout).ReadString('\n'); l != "ready\n" {
		t.Fatalf("first line %q", l)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Wait(); err == nil {
		t.Fatal("session survived Close")
	}
	if err := h.srv.HandleConn(context.Background(), nopConn(t)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("HandleConn after Close = %v", err)
	}
}

func nopConn(t *testing.T) net.Conn {
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close() })
	return c2
}

func TestHandleConnEndsWithContext(t *testing.T) {
	h := newHarness(t)
	c1, c2 := net.Pipe()
	defer c1.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.HandleConn(ctx, c2) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("HandleConn = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	sp, err := spawn.New(spawn.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadOrCreateHostKey(afero.NewMemMapFs(), "/k")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"complete", Config{Spawner: sp, HostKey: key}, true},
		{"no spawner", Config{HostKey: key}, false},
		{"no host key", Config{Spawner: sp}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("New = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestPtyClientDisconnectEndsShell(t *testing.T) {
	h := newHarness(t)
	client := h.tcpClient(t)
	sess, stdin, out := ptySession(t, client, 24, 80)
	_, _ = io.WriteString(stdin, "echo up\"\"1\n")
	out.waitFor(t, 0, "up1")
	client.Close()
	_ = sess.Close()
	// Close waits for every session handler: it returns only once the
	// shell is gone (hung up, or TERM/KILL after the WaitDelay).
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	<-out.done
}

// TestUnknownSubsystemRefusedAndLogged: a subsystem the agent does not
// serve is refused, as sshd refuses it, and operators see why at the
// default level (warn), not only at debug.
func TestUnknownSubsystemRefusedAndLogged(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	for _, name := range []string{"netconf", "sftp-nope"} {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.RequestSubsystem(name); err == nil {
			t.Errorf("subsystem %q accepted", name)
		}
		sess.Close()
	}
	warned := 0
	for _, e := range h.logs.All() {
		if e.Message == "ssh subsystem refused: this agent does not serve it" && e.Level == zap.WarnLevel {
			warned++
		}
	}
	if warned != 2 {
		t.Fatalf("%d warnings for 2 refused subsystems", warned)
	}
	// sftp itself is served.
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("sftp refused: %v", err)
	}
}

// TestSessionRequestsAsSSHD: the session and global requests sshd answers
// in its own way (session.c, serverloop.c), answered the same here.
func TestSessionRequestsAsSSHD(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)

	t.Run("env", func(t *testing.T) {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		// Setenv asks for a reply: yes for AcceptEnv's names, no for others.
		if err := sess.Setenv("LANG", "C.UTF-8"); err != nil {
			t.Errorf("LANG refused: %v", err)
		}
		if err := sess.Setenv("LD_PRELOAD", "/tmp/x.so"); err == nil {
			t.Error("LD_PRELOAD accepted")
		}
		out, err := sess.Output("echo \"$LANG|${LD_PRELOAD-unset}|$MAIL|$LOGNAME\"")
		if err != nil {
			t.Fatal(err)
		}
		name := currentUser()
		if got, want := strings.TrimSpace(string(out)), "C.UTF-8|unset|/var/mail/"+name+"|"+name; got != want {
			t.Errorf("env = %q, want %q", got, want)
		}
	})

	t.Run("break", func(t *testing.T) {
		// With a pty, "break" is a BREAK on the terminal (sshd's
		// tcsendbreak): answered yes. Without one: no.
		sess, stdin, r := ptySession(t, client, 24, 80)
		defer sess.Close()
		_, _ = stdin.Write([]byte("echo ready\n"))
		r.waitFor(t, 0, "ready")
		ok, err := sess.SendRequest("break", true, gossh.Marshal(struct{ Ms uint32 }{500}))
		if err != nil || !ok {
			t.Errorf("break on a pty: %v, %v; want yes", ok, err)
		}
		plain, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		if err := plain.Start("sleep 5"); err != nil {
			t.Fatal(err)
		}
		if ok, err := plain.SendRequest("break", true, gossh.Marshal(struct{ Ms uint32 }{500})); err != nil || ok {
			t.Errorf("break without a pty: %v, %v; want no", ok, err)
		}
	})

	t.Run("x11 and unknown requests", func(t *testing.T) {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		x11 := gossh.Marshal(struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})
		for _, req := range []struct {
			name    string
			payload []byte
		}{{"x11-req", x11}, {"keepalive@openssh.com", nil}, {"no-such-request", nil}} {
			if ok, err := sess.SendRequest(req.name, true, req.payload); err != nil || ok {
				t.Errorf("%s: %v, %v; want no, as sshd without X11 forwarding", req.name, ok, err)
			}
		}
		// A keepalive as a global request is answered too (no), so the
		// client's ServerAliveInterval sees the server alive.
		if ok, _, err := client.SendRequest("keepalive@openssh.com", true, nil); err != nil || ok {
			t.Errorf("global keepalive: %v, %v", ok, err)
		}
	})

	t.Run("no-more-sessions", func(t *testing.T) {
		c := h.pipeClient(t)
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if _, _, err := c.SendRequest("no-more-sessions@openssh.com", false, nil); err != nil {
			t.Fatal(err)
		}
		if out, err := sess.Output("echo still-works"); err != nil || string(out) != "still-works\n" {
			t.Fatalf("the open session: %q, %v", out, err)
		}
		if _, err := c.NewSession(); err == nil {
			t.Fatal("a session opened after no-more-sessions@openssh.com")
		}
	})
}
