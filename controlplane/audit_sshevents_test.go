package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/agent"
	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/agent/sshd"
	"github.com/courierhq/courier/controlplane/audit"
)

// sftpTestArg makes the test binary an SFTP server on its stdin and stdout
// (see TestMain), as courier-agent does with "sftp-server".
const sftpTestArg = "sftpd-for-controlplane-test"

func serveSFTPForTest() int {
	dir, _ := os.Getwd()
	if err := sshd.ServeSFTP(os.Stdin, os.Stdout, dir); err != nil {
		return 1
	}
	return 0
}

// sshThroughControlPlane opens an SSH client connection to workspace ws
// through the control plane's websocket endpoint.
func sshThroughControlPlane(t *testing.T, ts *testServer, token, ws string) *gossh.Client {
	t.Helper()
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL(), "http")+"/api/v2/workspaces/"+ws+"/ssh",
		&websocket.DialOptions{HTTPHeader: http.Header{HeaderSessionToken: {token}}})
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	conn, chans, reqs, err := gossh.NewClientConn(nc, "courier", &gossh.ClientConfig{User: "alice",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		_ = nc.Close()
		t.Fatalf("ssh handshake: %v", err)
	}
	return gossh.NewClient(conn, chans, reqs)
}

// TestAuditSSHForwardAndSFTP: a real agent behind the control plane; an SSH
// client opens a local forward (two connections to one target) and an sftp
// session through the control plane. The log holds exactly one ssh.forward
// record (kind, target, client) and one ssh.sftp record, with the agent as
// actor and the workspace as target, and none of the forwarded data. Runs
// on PostgreSQL too (COURIER_TEST_STORE=postgres).
func TestAuditSSHForwardAndSFTP(t *testing.T) {
	ts := newTestServer(t)
	p := ts.setup()
	var created CreatedWorkspaceResponse
	ts.want(ts.do("POST", "/api/v2/workspaces", p.admin, map[string]any{"name": "dev", "owner": "alice",
		"template": map[string]any{}}), 201).json(t, &created)
	home := t.TempDir()
	a, err := agent.New(agent.Config{URL: ts.URL(), Token: created.AgentToken, Home: home, DataDir: filepath.Join(home, ".agent"),
		Shell: "/bin/sh", Base: []string{"PATH=" + os.Getenv("PATH")}, SFTPCommand: []string{os.Args[0], sftpTestArg},
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	defer func() {
		_ = a.Close()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	}()
	waitFor(t, "the agent to be ready", func() bool { return ts.agentStatusOf(p.alice, "dev").State == proto.StateReady })

	const data = "forwarded-" + canary
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte(strings.ToUpper(line)))
			}()
		}
	}()

	var client *gossh.Client
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The agent takes SSH only after its first apply: retry until it does.
		client = sshThroughControlPlane(t, ts, p.alice, "dev")
		c, err := client.Dial("tcp", ln.Addr().String())
		if err == nil {
			_ = c.Close()
			break
		}
		_ = client.Close()
		if time.Now().After(deadline) {
			t.Fatalf("local forward: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer client.Close()
	for range 2 {
		c, err := client.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, data)
		got, _ := bufio.NewReader(c).ReadString('\n')
		_ = c.Close()
		if strings.TrimSpace(got) != strings.ToUpper(data) {
			t.Fatalf("through the forward: %q", got)
		}
	}
	sc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "f.txt"), []byte(canary), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stat("f.txt"); err != nil {
		t.Fatalf("sftp stat: %v", err)
	}
	_ = sc.Close()

	var recs []audit.Record
	count := func(action string) int {
		n := 0
		for _, r := range recs {
			if r.Action == action {
				n++
			}
		}
		return n
	}
	waitFor(t, "the forward and sftp records", func() bool {
		ts.api.audit.batch.Flush(context.Background())
		recs = ts.readAudit(p.admin)
		return count(actSSHForward) >= 1 && count(actSSHSFTP) >= 1
	})
	// Anything late would be a duplicate: give it time to arrive.
	time.Sleep(1500 * time.Millisecond)
	ts.api.audit.batch.Flush(context.Background())
	recs = ts.readAudit(p.admin)
	if count(actSSHForward) != 1 || count(actSSHSFTP) != 1 {
		t.Fatalf("%d ssh.forward and %d ssh.sftp records, want one each", count(actSSHForward), count(actSSHSFTP))
	}
	for _, r := range recs {
		if r.Action != actSSHForward && r.Action != actSSHSFTP {
			continue
		}
		if r.Actor.Kind != audit.ActorAgent || r.Actor.ID != created.Workspace.ID || r.Target.Kind != targetWorkspace ||
			r.Target.ID != created.Workspace.ID || r.Target.Name != "dev" || r.Outcome != audit.Success || r.Source != "127.0.0.1" {
			t.Errorf("record %+v", r)
		}
		var d map[string]string
		if err := json.Unmarshal(r.Details, &d); err != nil {
			t.Fatalf("details %s: %v", r.Details, err)
		}
		wantKind, wantTarget := proto.SSHSFTP, ""
		if r.Action == actSSHForward {
			wantKind, wantTarget = proto.SSHForwardLocal, ln.Addr().String()
		}
		if d["kind"] != wantKind || d["target"] != wantTarget || !strings.HasPrefix(d["client"], "127.0.0.1:") || d["user"] != "alice" {
			t.Errorf("%s details %s", r.Action, r.Details)
		}
	}
	dump, _ := json.Marshal(recs)
	if strings.Contains(string(dump), canary) || strings.Contains(strings.ToUpper(string(dump)), strings.ToUpper(canary)) {
		t.Error("forwarded or transferred data in the audit log")
	}
	var rep audit.Report
	ts.want(ts.do("GET", "/api/v2/audit/verify", p.admin, nil), 200).json(t, &rep)
	if !rep.OK {
		t.Fatalf("verify: %+v", rep)
	}
}
