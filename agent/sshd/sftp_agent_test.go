package sshd

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh/agent"

	"github.com/courierhq/courier/agent/proto"
)

// sftpTestArg makes the test binary the SFTP server (see TestMain), as
// courier-agent does with "sftp-server". Before serving it records its
// environment in ~/.sftp-env, so tests can check what the spawner gave it.
const sftpTestArg = "sftpd-for-test"

func sftpTestServer() int {
	dir, _ := os.Getwd()
	if err := os.WriteFile(filepath.Join(dir, ".sftp-env"), []byte(strings.Join(os.Environ(), "\n")), 0o600); err != nil {
		return 3
	}
	if err := ServeSFTP(os.Stdin, os.Stdout, dir); err != nil {
		return 2
	}
	return 0
}

func TestAgentForwarding(t *testing.T) {
	h := newHarness(t)
	client := h.pipeClient(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "test-key-comment"}); err != nil {
		t.Fatal(err)
	}
	if err := agent.ForwardToAgent(client, keyring); err != nil {
		t.Fatal(err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := agent.RequestAgentForwarding(sess); err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	// The session prints its socket, then waits for stdin.
	if err := sess.Start(`echo "$SSH_AUTH_SOCK"; cat >/dev/null`); err != nil {
		t.Fatal(err)
	}
	sock, _ := bufio.NewReader(stdout).ReadString('\n')
	sock = strings.TrimSpace(sock)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("SSH_AUTH_SOCK %q: %v, %v; want a socket of mode 0600", sock, fi, err)
	}
	if di, err := os.Stat(filepath.Dir(sock)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("the socket's directory: %v, %v; want mode 0700", di, err)
	}
	// Through the socket, the client's keys.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := agent.NewClient(c).List()
	c.Close()
	if err != nil || len(keys) != 1 || keys[0].Comment != "test-key-comment" {
		t.Fatalf("keys through the forwarded agent: %v, %v", keys, err)
	}
	// The session ends: the socket and its directory are gone.
	stdin.Close()
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent socket to be removed", func() bool {
		_, err := os.Stat(filepath.Dir(sock))
		return errors.Is(err, os.ErrNotExist)
	})
	if h.count(kindAgent, resultOK) != 1 {
		t.Errorf("auth-agent ok = %v, want 1", h.count(kindAgent, resultOK))
	}
	if got := h.events.kinds(); fmt.Sprint(got) != fmt.Sprint([]string{proto.SSHAgentForward}) {
		t.Errorf("events = %q, want one %s", got, proto.SSHAgentForward)
	}
}

func TestSFTPSubsystem(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			client := tr.dial(h, t)
			sc, err := sftp.NewClient(client)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			wd, err := sc.Getwd()
			if err != nil || wd != h.home {
				t.Fatalf("sftp starts in %q (%v), want the home %q", wd, err, h.home)
			}
			f, err := sc.Create("up.txt") // relative: under the home
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("uploaded")); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if got := read(t, filepath.Join(h.home, "up.txt")); got != "uploaded" {
				t.Fatalf("uploaded file = %q", got)
			}
			// A relative symlink target is kept as given, as sshd does: a
			// link in a subdirectory points beside itself, not at the home.
			if err := sc.Mkdir("sub"); err != nil {
				t.Fatal(err)
			}
			if err := sc.Symlink("up.txt", "sub/lnk"); err != nil {
				t.Fatal(err)
			}
			if target, err := os.Readlink(filepath.Join(h.home, "sub", "lnk")); err != nil || target != "up.txt" {
				t.Fatalf("symlink target = %q (%v), want the relative %q", target, err, "up.txt")
			}
			if err := sc.Remove("up.txt"); err != nil {
				t.Fatal(err)
			}
			// The SFTP server got a session's env, secrets included.
			env := parseEnv(read(t, filepath.Join(h.home, ".sftp-env")))
			if env["SECRET_API"] != canarySecret || env["FROM_TEMPLATE"] != "t" || env["HOME"] != h.home {
				t.Errorf("sftp server env: SECRET_API set %v, FROM_TEMPLATE %q, HOME %q",
					env["SECRET_API"] == canarySecret, env["FROM_TEMPLATE"], env["HOME"])
			}
			if _, ok := env["COURIER_AGENT_TOKEN"]; ok {
				t.Error("the agent token reached the sftp server")
			}
			sc.Close()
			waitFor(t, "the sftp count", func() bool { return h.count(kindSFTP, resultOK) == 1 })
			if !h.logged("ssh subsystem started", kindSFTP, "") {
				t.Error("no debug line for the subsystem start")
			}
		})
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
