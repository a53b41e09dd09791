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
}
