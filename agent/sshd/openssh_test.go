package sshd

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenSSHClient drives the real OpenSSH client against Serve.
func TestOpenSSHClient(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no ssh client on PATH; CI must install openssh-client: %v", err)
		}
		t.Skip("no ssh client on PATH (apt-get install -y openssh-client)")
	}
	h := newHarness(t)
	_, port, _ := net.SplitHostPort(h.tcpServe(t))
	run := func(remote string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sshBin,
			"-F", "/dev/null", "-p", port,
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "SendEnv=LANG",
			"coder@127.0.0.1", remote)
		cmd.Env = []string{"LANG=C.UTF-8", "PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ssh: %v", err)
		}
		return string(out), 0
	}

	out, code := run("env")
	if code != 0 {
		t.Fatalf("ssh env exited %d: %q", code, out)
	}
	env := parseEnv(out)
	if env["SECRET_API"] != canarySecret {
		t.Fatalf("SECRET_API = %q in %q", env["SECRET_API"], out)
	}
	if env["LANG"] != "C.UTF-8" {
		t.Errorf("LANG = %q, want the client's (SendEnv)", env["LANG"])
	}
	if !strings.HasPrefix(env["SSH_CONNECTION"], "127.0.0.1 ") {
		t.Errorf("SSH_CONNECTION = %q", env["SSH_CONNECTION"])
	}
	if _, ok := env["COURIER_AGENT_TOKEN"]; ok {
		t.Error("agent token in the session env")
	}
	if _, code := run("exit 7"); code != 7 {
		t.Fatalf("exit status %d, want 7", code)
	}
	// sshd sets TERM only with a terminal: the agent's own must not leak.
	if out, _ := run("echo ${TERM-unset}"); out != "unset\n" {
		t.Errorf("TERM without a pty = %q, want unset", out)
	}
	if out, _ := run("env"); strings.Contains(out, agentTERM) {
		t.Errorf("the agent's TERM reached a session without a pty: %q", out)
	}
	// Nor anything else of the terminal the agent was started from; a
	// shell counts its own SHLVL from nothing (an inherited one, bumped,
	// would stop bash from reading ~/.bashrc).
	for _, kv := range starterEnv {
		if strings.Contains(out, kv) {
			t.Errorf("the agent's starter variable %s reached a session", kv)
		}
	}
	if lvl := env["SHLVL"]; lvl != "" && lvl != "1" {
		t.Errorf("SHLVL = %q in a session: inherited from the agent's starter", lvl)
	}

	// A process killed by a signal is reported as exit-signal, not as
	// status 143: OpenSSH's client then exits 255.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshBin, "-F", "/dev/null", "-p", port,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=DEBUG", "coder@127.0.0.1", "kill -TERM $$")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	killed, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Fatalf("ssh 'kill -TERM $$': err %v, output %q; want exit 255 (exit-signal)", err, killed)
	}
	// The client says it at debug level only (OpenSSH 9): the request
	// type is what to check.
	if !strings.Contains(string(killed), "rtype exit-signal") {
		t.Errorf("no exit-signal request reached ssh: %q", killed)
	}
	if _, code := run("exit 143"); code != 143 {
		t.Errorf("exit 143 gave %d: a status must stay a status", code)
	}

	// The rest of what sshd's session.c does, driven by the real client.
	client := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, sshBin, append([]string{"-F", "/dev/null", "-p", port,
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"}, args...)...)
		c.Env = []string{"PATH=/usr/bin:/bin", "TERM=vt220", "DISPLAY=:0", "XAUTHORITY=/dev/null", "NOT_ACCEPTED=x", "LC_PAPER=C"}
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// A pty: TERM is the client's, SSH_TTY names the terminal.
	out, err = client("-tt", "coder@127.0.0.1", `echo "tty=$SSH_TTY term=$TERM"`)
	if err != nil || !strings.Contains(out, "tty=/dev/pts/") || !strings.Contains(out, "term=vt220") {
		t.Errorf("ssh -tt: %v %q", err, out)
	}
	// With a pty too, nothing of the agent's starter: its window size
	// would shrink every terminal program, its SHLVL stop ~/.bashrc.
	if out, err = client("-tt", "coder@127.0.0.1", "env"); err != nil {
		t.Errorf("ssh -tt env: %v", err)
	}
	for _, kv := range starterEnv {
		if strings.Contains(out, kv) {
			t.Errorf("the agent's starter variable %s reached a pty session", kv)
		}
	}
	// X11 forwarding is refused as by sshd with X11Forwarding no; the
	// command still runs, without DISPLAY.
	out, err = client("-X", "coder@127.0.0.1", `echo "display=${DISPLAY-unset}"`)
	if err != nil || !strings.Contains(out, "X11 forwarding request failed") || !strings.Contains(out, "display=unset") {
		t.Errorf("ssh -X: %v %q", err, out)
	}
	// SendEnv: AcceptEnv's LC_* passes, another name does not.
	out, err = client("-o", "SendEnv=NOT_ACCEPTED LC_PAPER", "coder@127.0.0.1", `echo "na=${NOT_ACCEPTED-unset} lc=$LC_PAPER mail=$MAIL"`)
	if err != nil || !strings.Contains(out, "na=unset lc=C mail=/var/mail/") {
		t.Errorf("SendEnv: %v %q", err, out)
	}
}
