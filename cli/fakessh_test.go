package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// serveFakeSSH adds the workspace SSH websocket to the fake: workspace "dev"
// runs an SSH server whose sessions echo their command and exit with the
// status given by a command "exit N".
func (f *fakeServer) serveFakeSSH(mux *http.ServeMux) {
	sshSrv := &gliderssh.Server{Handler: func(s gliderssh.Session) {
		cmd := s.RawCommand()
		fmt.Fprintf(s, "ran: %s\n", cmd)
		var code int
		_, _ = fmt.Sscanf(cmd, "exit %d", &code)
		_ = s.Exit(code)
	}}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		panic(err)
	}
	sshSrv.AddHostKey(signer)
	// HandleConn skips Serve's defaults: name the session handler.
	sshSrv.ChannelHandlers = map[string]gliderssh.ChannelHandler{"session": gliderssh.DefaultSessionHandler}
	mux.HandleFunc("GET /api/v2/workspaces/{workspace}/ssh", f.auth(func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.PathValue("workspace") != "dev" {
			writeErr(w, http.StatusNotFound, "Workspace not found.", nil)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conn := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
		sshSrv.HandleConn(conn)
	}))
}

func TestSSHRunsCommandAndPropagatesExitStatus(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	r := c.run(nil, "ssh", "dev", "--", "exit", "7")
	if r.code != 7 {
		t.Fatalf("exit %d, want 7; stderr %q", r.code, r.stderr)
	}
	// As ssh: the remote command's status is the exit code, with no line
	// of Courier's own on stderr (the command's output said why).
	if strings.Contains(r.stderr, "error:") || strings.Contains(r.stderr, "exited with status") {
		t.Errorf("courier ssh added its own line for a remote failure: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "ran: exit 7") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if r := c.ok(nil, "ssh", "dev", "--", "echo", "hi"); !strings.Contains(r.stdout, "ran: echo hi") {
		t.Errorf("stdout = %q", r.stdout)
	}
	r = c.run(nil, "ssh", "nope", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "Workspace not found.") {
		t.Errorf("unknown workspace: exit %d, stderr %q", r.code, r.stderr)
	}
}

// pipeConn is a net.Conn over a child process's stdout (read) and stdin
// (write), as OpenSSH's ProxyCommand sees it.
type pipeConn struct {
	io.Reader
	io.WriteCloser
}

func (pipeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "proxy", Net: "unix"} }
func (pipeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "proxy", Net: "unix"} }
func (pipeConn) SetDeadline(time.Time) error      { return nil }
func (pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (pipeConn) SetWriteDeadline(time.Time) error { return nil }
func (p pipeConn) Close() error                   { return p.WriteCloser.Close() }

func TestSSHStdioServesAProxyCommand(t *testing.T) {
	srv := newFakeServer(t)
	c := loggedIn(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, courierBin, "ssh", "--stdio", "--ssh-host-prefix", "courier.", "courier.dev")
	cmd.Env = c.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(pipeConn{stdout, stdin}, "courier.dev", &ssh.ClientConfig{
		User: "me", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatalf("handshake through --stdio: %v (stderr %q)", err, stderr.String())
	}
	client := ssh.NewClient(sc, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("hello proxy")
	if err != nil || string(out) != "ran: hello proxy\n" {
		t.Errorf("output %q, err %v", out, err)
	}
	client.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("courier ssh --stdio: %v (stderr %q)", err, stderr.String())
	}
}
