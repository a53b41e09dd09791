//go:build linux

package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/client"
)

// The Windows agent, proven under Wine: the agent built for windows/amd64
// connects to a real Linux control plane, writes a file secret into the
// Wine user's profile, runs a cmd.exe startup script that sees the file and
// the env secret, and an exec session through `courier ssh` returns both.
//
// It needs wine64 and the MinGW binutils (testdata/wine/setup.sh builds the
// DLL Wine 8 lacks for Go); CI installs both, elsewhere it skips.

const (
	wineValueEnv  = "wine-canary-env-5e2a"
	wineValueFile = "wine-canary-file-c81b"
)

// wine returns the wine64 loader and a prepared prefix (see setup.sh), or
// skips (fails on CI) when Wine is missing.
func wine(t *testing.T) (loader, prefix string) {
	t.Helper()
	loader = "/usr/lib/wine/wine64"
	if p, err := exec.LookPath("wine64"); err == nil {
		loader = p
	}
	if _, err := os.Stat(loader); err != nil {
		need(t, "wine64") // skips, or fails on CI
	}
	need(t, "x86_64-w64-mingw32-as")
	prefix = filepath.Join(t.TempDir(), "wineprefix")
	setup := exec.Command("bash", "testdata/wine/setup.sh", prefix)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("wine prefix setup: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		k := exec.Command(filepath.Join(filepath.Dir(loader), "wineserver"), "-k")
		k.Env = append(os.Environ(), "WINEPREFIX="+prefix)
		_ = k.Run()
	})
	return loader, prefix
}

func buildWindows(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg)+".exe")
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s for windows: %v", pkg, err)
	}
	return out
}

// winPath is how a Windows program under Wine names a Linux path: drive Z:
// is the Linux root.
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

func TestWindowsAgentUnderWine(t *testing.T) {
	loader, prefix := wine(t)
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	agentExe := buildWindows(t, bin, "github.com/courierhq/courier/cmd/courier-agent")
	ctx := context.Background()

	addr, serverLog := startServer(t, courier)
	url := "http://" + addr
	api, token := firstUser(t, url, "win", "win@e2e.test", "correct-horse")
	// cmd.exe runs one line per /c: the script chains with &.
	ws, err := api.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "win", Owner: "win", Template: client.Template{
		Env: map[string]string{"WIN_KEY": "from-template", "TEMPLATE_ONLY": "t"},
		Scripts: []client.Script{{Name: "proof", TimeoutSeconds: 60, Script: `type "%USERPROFILE%\.config\svc\token" > "%USERPROFILE%\proof" && ` +
			`echo WIN_KEY=%WIN_KEY% TEMPLATE_ONLY=%TEMPLATE_ONLY% Win_Key=%Win_Key%>> "%USERPROFILE%\proof"`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []client.CreateSecretRequest{
		{Name: "win-key", Value: wineValueEnv, EnvName: "WIN_KEY"},
		{Name: "win-file", Value: wineValueFile, FilePath: "~/.config/svc/token"},
		// "/" is the root of the agent's current drive: C: here.
		{Name: "win-root", Value: wineValueFile + "-root", FilePath: "/courier-e2e/root-file"},
	} {
		if _, err := api.CreateSecret(ctx, "me", s); err != nil {
			t.Fatalf("create %s: %v", s.Name, err)
		}
	}

	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	if err := os.WriteFile(tokenFile, []byte(ws.AgentToken), 0o600); err != nil {
		t.Fatal(err)
	}
	agentLog := &logBuf{}
	agent := exec.Command(loader, agentExe, "--url", url, "--token-file", winPath(tokenFile), "--max-backoff", "1s")
	agent.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
	// Started inside drive_c, the agent's working directory is on C:.
	agent.Dir = filepath.Join(prefix, "drive_c")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })

	// The Wine user's profile is C:\users\<login>, drive_c in the prefix.
	profile := filepath.Join(prefix, "drive_c", "users", os.Getenv("USER"))
	if os.Getenv("USER") == "" {
		profile = filepath.Join(prefix, "drive_c", "users", "root")
	}
	proof := filepath.Join(profile, "proof")
	// cmd's echo may write its line and the line's CRLF separately: wait for
	// the whole line, or the comparison below can read it half written.
	waitUntil(t, "the startup script's proof", func() bool {
		p := read(proof)
		return strings.Contains(p, "TEMPLATE_ONLY") && strings.HasSuffix(p, "\r\n")
	})
	wantProof := wineValueFile + "WIN_KEY=" + wineValueEnv + " TEMPLATE_ONLY=t Win_Key=" + wineValueEnv + "\r\n"
	if got := read(proof); got != wantProof {
		t.Errorf("proof = %q\nwant    %q\nagent log:\n%s", got, wantProof, agentLog.String())
	}
	if got := read(filepath.Join(profile, ".config", "svc", "token")); got != wineValueFile {
		t.Errorf("file secret in the profile = %q", got)
	}
	if got := read(filepath.Join(prefix, "drive_c", "courier-e2e", "root-file")); got != wineValueFile+"-root" {
		t.Errorf("file secret at the drive's root = %q", got)
	}

	// An exec session through courier ssh: the env value and the file.
	ssh := exec.Command(courier, "ssh", "win", `echo %WIN_KEY%& type "%USERPROFILE%\.config\svc\token"`)
	ssh.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
	out, err := ssh.CombinedOutput()
	if err != nil {
		t.Fatalf("courier ssh: %v\n%s\nagent log:\n%s", err, out, agentLog.String())
	}
	if want := wineValueEnv + "\r\n" + wineValueFile; string(out) != want {
		t.Errorf("courier ssh printed %q, want %q", out, want)
	}
	// Exit codes travel back.
	ssh = exec.Command(courier, "ssh", "win", "exit 7")
	ssh.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+t.TempDir())
	if err := ssh.Run(); err == nil || ssh.ProcessState.ExitCode() != 7 {
		t.Errorf("courier ssh 'exit 7': %v, exit code %d, want 7", err, ssh.ProcessState.ExitCode())
	}

	// (3) The same agent as a Windows service: the service manager starts
	// it, and its stop request is a clean shutdown (state "off").
	_ = agent.Process.Kill()
	_ = agent.Wait()
	wineRun := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, loader, args...)
		c.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
		// A file, not a pipe: the Wine services this starts inherit it
		// and outlive the command.
		f, err := os.CreateTemp(t.TempDir(), "wine-out")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c.Stdout, c.Stderr = f, f
		err = c.Run()
		out := read(f.Name())
		if err != nil {
			t.Fatalf("wine %v: %v\n%s", args, err, out)
		}
		return out
	}
	// Wine ends its services once no other Wine process runs: a
	// persistent wineserver keeps them (it is killed at cleanup).
	// No pipes: the daemon would hold them open.
	persist := exec.Command(filepath.Join(filepath.Dir(loader), "wineserver"), "-p")
	persist.Env = append(os.Environ(), "WINEPREFIX="+prefix)
	if err := persist.Run(); err != nil {
		t.Fatalf("wineserver -p: %v", err)
	}
	svcLog := filepath.Join(t.TempDir(), "service.log")
	// --service: x/sys detects a service by services.exe in session 0,
	// which Wine's is not.
	wineRun("sc", "create", "CourierAgent", "binPath=", `"`+winPath(agentExe)+`" --service --url `+url+
		` --token-file "`+winPath(tokenFile)+`" --log-file "`+winPath(svcLog)+`" --max-backoff 1s`)
	wineRun("sc", "start", "CourierAgent")
	t.Cleanup(func() {
		c := exec.Command(loader, "sc", "stop", "CourierAgent")
		c.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
		_ = c.Run()
	})
	state := func(want string) func() bool {
		return func() bool {
			w, err := api.Workspace(ctx, "win")
			return err == nil && w.State == want
		}
	}
	waitUntil(t, "the service's agent to be ready", state("ready"))
	wineRun("sc", "stop", "CourierAgent")
	waitUntil(t, "the service's agent to report off", state("off"))
	waitUntil(t, "the service's process to end", func() bool { return strings.Contains(read(svcLog), "courier-agent stopped") })
	if got := read(svcLog); !strings.Contains(got, "connected to the control plane") {
		t.Errorf("the service's log file lacks the connection:\n%s", got)
	}

	for name, log := range map[string]string{"agent": agentLog.String() + read(svcLog), "server": serverLog.String()} {
		for _, v := range []string{wineValueEnv, wineValueFile, ws.AgentToken} {
			if strings.Contains(log, v) {
				t.Errorf("the %s log contains a secret value or the agent token", name)
			}
		}
	}
	if t.Failed() {
		t.Log("agent log:\n" + agentLog.String())
	}
}
