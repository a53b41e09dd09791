//go:build linux

package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// The agent as the workspace's own user, as templates run it: a real
// control plane (as root), the real agent binary started with the
// unprivileged user's credentials (its home, data dir and 0600 token file
// owned by it), file and env secrets, a startup script, an app and the real
// OpenSSH client through `courier ssh --stdio`.

const (
	valueUnprivEnv  = "unpriv-canary-env-3b7e"
	valueUnprivFile = "unpriv-canary-file-c41d"
	valueUnprivPre  = "unpriv-canary-pre-80fa"
	valueUnprivACL  = "unpriv-canary-acl-e29c"
	valueUnprivDeny = "unpriv-canary-deny-17b0"
)

// wsProcess is a process run as the test user, with its output collected.
func wsProcess(u wsUser, home, bin string, args ...string) (*exec.Cmd, *logBuf) {
	log := &logBuf{}
	c := exec.Command(bin, args...)
	c.Dir = home
	c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "USER=" + wsUserName, "LOGNAME=" + wsUserName, "SHELL=/bin/sh"}
	c.SysProcAttr = u.credential()
	c.Stdout, c.Stderr = log, log
	return c, log
}

// stopAgent sends SIGTERM and wants a clean exit.
func stopAgent(t *testing.T, c *exec.Cmd, done <-chan error, log *logBuf) {
	t.Helper()
	_ = c.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("the agent did not exit after SIGTERM")
	}
}

func TestEndToEndAsWorkspaceUser(t *testing.T) {
	u := ensureWsUser(t)
	sshBin, setfacl, getfacl := need(t, "ssh"), need(t, "setfacl"), need(t, "getfacl")
	base, mk := wsBase(t, u)
	bin := filepath.Join(base, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentBin := build(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	home, data, etc := mk("home"), mk("data"), mk("etc")
	ctx := context.Background()

	addr, serverLog := startServer(t, courier)
	url := "http://" + addr
	api, token := firstUser(t, url, "dev", "dev@e2e.test", "correct-horse")
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Owner: "dev", Template: client.Template{
		Scripts: []client.Script{{Name: "proof", TimeoutSeconds: 30, Script: `set -e
echo "$(id -un) $(stat -c '%a %U' ~/.config/svc/token) $(cat ~/.config/svc/token) API_KEY=$API_KEY" > ~/proof`}},
		Apps: []client.App{{Slug: "who", Command: `echo "$(id -un) $API_KEY" > ~/app.tmp && mv ~/app.tmp ~/app; sleep 3600`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(etc, "agent-token")
	wsFile(t, tokenFile, ws.AgentToken+"\n", u.uid, u.gid, 0o600)

	// Files that exist before the agent starts: the case, a file
	// of a group the user is not in; a file with an ACL; and a directory
	// only root may write.
	pre, aclFile := filepath.Join(home, ".config", "pre", "existing"), filepath.Join(home, ".config", "acl", "file")
	wsDirs(t, u, filepath.Dir(pre))
	wsDirs(t, u, filepath.Dir(aclFile))
	wsFile(t, pre, "old", u.uid, u.otherGID, 0o640)
	wsFile(t, aclFile, "old", u.uid, u.gid, 0o640)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return string(out)
	}
	run(setfacl, "-m", "u:nobody:r", aclFile)
	aclBefore := run(getfacl, "--omit-header", "--numeric", "--absolute-names", aclFile)
	denied := filepath.Join(base, "root-only", "secret")
	if err := os.Mkdir(filepath.Dir(denied), 0o755); err != nil {
		t.Fatal(err)
	}
	wsFile(t, denied, "root's", 0, 0, 0o644)

	mkSecret := func(name, value, env, file string) {
		t.Helper()
		if _, err := api.CreateSecret(ctx, "me", client.CreateSecretRequest{Name: name, Value: value, EnvName: env, FilePath: file}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	mkSecret("api-key", valueUnprivEnv, "API_KEY", "")
	mkSecret("service-token", valueUnprivFile, "", "~/.config/svc/token")
	mkSecret("pre", valueUnprivPre, "", "~/.config/pre/existing")
	mkSecret("acl", valueUnprivACL, "", "~/.config/acl/file")
	mkSecret("denied", valueUnprivDeny, "", denied)

	proxy := newCutProxy(t, addr)
	agent, agentLog := wsProcess(u, home, agentBin, "--url", "http://"+proxy.ln.Addr().String(), "--data-dir", data,
		"--token-file", tokenFile, "--max-backoff", "1s")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	t.Cleanup(func() { _ = agent.Process.Kill() })

	// The startup script and the app run as the user, with the secrets.
	waitUntil(t, "the startup script's proof", func() bool { return strings.Contains(read(filepath.Join(home, "proof")), "API_KEY") })
	if got, want := read(filepath.Join(home, "proof")), wsUserName+" 600 "+wsUserName+" "+valueUnprivFile+" API_KEY="+valueUnprivEnv+"\n"; got != want {
		t.Fatalf("proof = %q\nwant    %q", got, want)
	}
	waitUntil(t, "the app", func() bool { return read(filepath.Join(home, "app")) == wsUserName+" "+valueUnprivEnv+"\n" })
	waitUntil(t, "the workspace to be ready", func() bool {
		w, err := api.Workspace(ctx, "dev")
		return err == nil && w.State == "ready"
	})

	// The real OpenSSH client: the session is the user's, with the secrets,
	// without and with a terminal.
	ssh := func(args ...string) string {
		t.Helper()
		c := exec.Command(sshBin, append([]string{"-F", "/dev/null", "-o", "ProxyCommand=" + courier + " ssh --stdio %h",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}, args...)...)
		c.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got, want := ssh("dev", `echo "$(id -un) $(id -u) API_KEY=$API_KEY FILE=$(cat ~/.config/svc/token)"`),
		fmt.Sprintf("%s %d API_KEY=%s FILE=%s\n", wsUserName, u.uid, valueUnprivEnv, valueUnprivFile); got != want {
		t.Fatalf("ssh: %q, want %q", got, want)
	}
	if got, want := ssh("-tt", "dev", `test -t 0 && echo "tty $(id -un) $API_KEY"`), "tty "+wsUserName+" "+valueUnprivEnv+"\r\n"; got != want {
		t.Errorf("ssh with a terminal: %q, want %q", got, want)
	}

	// The file of another group: content replaced in place, owner, group
	// and mode kept, one warning; the operator sees it on both sides.
	if got := read(pre); got != valueUnprivPre {
		t.Errorf("pre-existing file holds %q", got)
	}
	if st, err := os.Stat(pre); err != nil || st.Mode().Perm() != 0o640 ||
		st.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) || st.Sys().(*syscall.Stat_t).Gid != uint32(u.otherGID) {
		t.Errorf("pre-existing file's mode, owner or group changed: %v %v", st, err)
	}
	logs := agentLog.String()
	if n := strings.Count(logs, "file written in place"); n != 1 || !strings.Contains(logs, `"path":"`+pre+`"`) {
		t.Errorf("%d in-place warnings, want one naming %s", n, pre)
	}
	if !strings.Contains(serverLog.String(), "agent wrote a secret's file in place") {
		t.Error("the control plane was not told that the file was written in place")
	}
	var outcomes map[string]client.Outcome
	waitUntil(t, "the apply report", func() bool {
		st, err := api.AgentStatus(ctx, "dev")
		if err != nil || st.LastApply == nil {
			return false
		}
		outcomes = map[string]client.Outcome{}
		for _, o := range st.LastApply.Outcomes {
			outcomes[o.Secret] = o
		}
		return true
	})
	if o := outcomes["pre"]; o.Outcome != "written" || !strings.Contains(o.InPlace, "group") {
		t.Errorf("status of the file of another group: %+v", o)
	}
	if o := outcomes["acl"]; o.Outcome != "written" || o.InPlace != "" {
		t.Errorf("status of the file with an ACL: %+v", o)
	}
	if o := outcomes["denied"]; o.Outcome != "failed" || !strings.Contains(o.Error, "permission denied") {
		t.Errorf("status of the file the user may not write: %+v", o)
	}
	show := exec.Command(courier, "workspaces", "show", "dev")
	show.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
	if out, err := show.CombinedOutput(); err != nil || !strings.Contains(string(out), "written in place: ") {
		t.Errorf("courier workspaces show: %v\n%s", err, out)
	}
	// The ACL is kept.
	if got := read(aclFile); got != valueUnprivACL {
		t.Errorf("ACL file holds %q", got)
	}
	if after := run(getfacl, "--omit-header", "--numeric", "--absolute-names", aclFile); after != aclBefore {
		t.Errorf("ACL changed:\n%s\nwant\n%s", after, aclBefore)
	}
	// The file the user may not write: reported, untouched; the rest applied.
	if got := read(denied); got != "root's" {
		t.Errorf("a file the user may not write changed to %q", got)
	}
	var deniedLine string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "secret not applied") {
			deniedLine += l
		}
	}
	if !strings.Contains(deniedLine, `"secret":"denied"`) || !strings.Contains(deniedLine, filepath.Dir(denied)) ||
		!strings.Contains(deniedLine, "permission denied") || strings.Count(logs, "secret not applied") != 1 {
		t.Errorf("want one error naming the secret, the path and the permission; got %q", deniedLine)
	}

	// A reconnect applies again as the user: the file of another group is
	// rewritten in place again, still its group's; new sessions see the
	// new value.
	v2 := valueUnprivEnv + "-v2"
	for _, name := range []string{"api-key", "pre"} {
		if _, err := api.UpdateSecret(ctx, "me", name, client.UpdateSecretRequest{Value: &v2}); err != nil {
			t.Fatal(err)
		}
	}
	proxy.cut()
	waitUntil(t, "the reconnect's apply", func() bool {
		return strings.Count(agentLog.String(), `"msg":"secrets applied"`) >= 2
	})
	if got := read(pre); got != v2 {
		t.Errorf("after the reconnect the pre-existing file holds %q", got)
	}
	if st, err := os.Stat(pre); err != nil || st.Sys().(*syscall.Stat_t).Gid != uint32(u.otherGID) {
		t.Errorf("after the reconnect the pre-existing file's group changed: %v %v", st, err)
	}
	if got := ssh("dev", `echo "$(id -un) $API_KEY"`); got != wsUserName+" "+v2+"\n" {
		t.Errorf("after the reconnect ssh sees %q", got)
	}
	logs = agentLog.String()

	stopAgent(t, agent, agentDone, agentLog)
	if w, err := api.Workspace(ctx, "dev"); err != nil || w.State != "off" {
		t.Errorf("workspace state after SIGTERM = %q, %v", w.State, err)
	}
	// The agent created its state as the user, never as anyone else.
	_ = filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
			t.Errorf("%s is owned by uid %d", p, fi.Sys().(*syscall.Stat_t).Uid)
		}
		return nil
	})
	for name, log := range map[string]string{"agent": logs, "server": serverLog.String()} {
		for _, v := range []string{valueUnprivEnv, v2, valueUnprivFile, valueUnprivPre, valueUnprivACL, valueUnprivDeny, ws.AgentToken, token} {
			if strings.Contains(log, v) {
				t.Errorf("the %s log contains a secret value or token (%.12s...)", name, v)
			}
		}
	}
	if t.Failed() {
		t.Log("agent log:\n" + logs)
	}
}
