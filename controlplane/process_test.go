package controlplane

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binDir holds the courier binary built once for the process tests.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

// courierBinary builds ./cmd/courier once per test run.
func courierBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the courier binary")
	}
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "courier-bin-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "courier")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/courierhq/courier/cmd/courier")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// proc is a running `courier server` process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan struct{}
}

// startServer runs `courier server` on dataDir with a random port, the
// listen address and log settings given by environment variables (the
// rest by flags, extra ones appended), and waits for its "listening" log
// line.
func startServer(t *testing.T, dataDir string, logs *syncBuffer, extra ...string) *proc {
	t.Helper()
	return startServerWith(t, logs, nil, append([]string{"--data-dir", dataDir}, extra...)...)
}

// startServerWith runs `courier server` with args and the environment
// variables env added to startServer's, and waits for it to listen.
func startServerWith(t *testing.T, logs *syncBuffer, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(courierBinary(t), append([]string{"server"}, args...)...)
	cmd.Env = append(os.Environ(), "COURIER_LISTEN=127.0.0.1:0", "COURIER_LOG_LEVEL=debug", "COURIER_LOG_FORMAT=json")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: logs, done: make(chan struct{})}
	urlCh := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			logs.Write(append(append([]byte(nil), line...), '\n'))
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &entry) == nil && entry.Msg == "control plane listening" {
				urlCh <- entry.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case p.url = <-urlCh:
	case <-p.done:
		t.Fatalf("courier server exited early; log:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("courier server did not start; log:\n%s", logs.String())
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// request is a minimal JSON client for process tests.
func request(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(HeaderSessionToken, token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func firstUserToken(t *testing.T, url string) string {
	t.Helper()
	if st, b := request(t, "POST", url+"/api/v2/users/first", "", map[string]string{
		"username": "ada", "email": "ada@example.com", "password": testPassword}); st != 201 {
		t.Fatalf("first user: %d %s", st, b)
	}
	st, b := request(t, "POST", url+"/api/v2/users/login", "", map[string]string{"username": "ada", "password": testPassword})
	var lr LoginResponse
	if st != 201 || json.Unmarshal(b, &lr) != nil {
		t.Fatalf("login: %d %s", st, b)
	}
	return lr.SessionToken
}

// referenceExamples are the curl samples of the Secrets API reference,
// verbatim, in an order that makes each one succeed.
var referenceExamples = []struct {
	curl   string
	body   string // added with -d where the example has a body
	status int
}{
	{`curl -X GET http://coder-server:8080/api/v2/users/{user}/secrets \
-H 'Accept: application/json' \
-H 'Coder-Session-Token: API_KEY'`, "", 200},
	{`curl -X POST http://coder-server:8080/api/v2/users/{user}/secrets \
-H 'Content-Type: application/json' \
-H 'Accept: application/json' \
-H 'Coder-Session-Token: API_KEY'`, `{"description":"string","env_name":"REF_ENV","file_path":"~/.ref","name":"{name}","value":"` + canary + `"}`, 201},
	{`curl -X GET http://coder-server:8080/api/v2/users/{user}/secrets/{name} \
-H 'Accept: application/json' \
-H 'Coder-Session-Token: API_KEY'`, "", 200},
	{`curl -X PATCH http://coder-server:8080/api/v2/users/{user}/secrets/{name} \
-H 'Content-Type: application/json' \
-H 'Accept: application/json' \
-H 'Coder-Session-Token: API_KEY'`, `{"description":"string","env_name":"REF_ENV2","file_path":"~/.ref2","value":"` + canary + `-2"}`, 200},
	{`curl -X DELETE http://coder-server:8080/api/v2/users/{user}/secrets/{name} \
-H 'Coder-Session-Token: API_KEY'`, "", 204},
}

// TestReferenceCurlExamples runs the reference's curl examples with real
// curl against a real `courier server` process.
func TestReferenceCurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; CI must install it")
		}
		t.Skip("curl not installed")
	}
	// The samples above are the reference's, character for character.
	if ref, err := os.ReadFile("/work/shared/reference/secrets-api-reference.txt"); err == nil {
		for _, ex := range referenceExamples {
			if !strings.Contains(string(ref), ex.curl) {
				t.Fatalf("sample not found verbatim in the reference:\n%s", ex.curl)
			}
		}
	}
	logs := &syncBuffer{}
	p := startServer(t, t.TempDir(), logs)
	token := firstUserToken(t, p.url)
	for _, ex := range referenceExamples {
		cmdline := strings.NewReplacer(
			"http://coder-server:8080", p.url, "API_KEY", token, "{user}", "me", "{name}", "ref-secret",
		).Replace(ex.curl)
		args := []string{"-c", cmdline + ` -sS -o /dev/stdout -w '\n%{http_code}'`}
		if ex.body != "" {
			args[1] += " -d '" + strings.ReplaceAll(ex.body, "{name}", "ref-secret") + "'"
		}
		out, err := exec.Command("sh", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", ex.curl, err, out)
		}
		text := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(text, '\n')
		body, code := "", text
		if i >= 0 {
			body, code = text[:i], text[i+1:]
		}
		if code != fmt.Sprint(ex.status) {
			t.Fatalf("%s\nstatus %s, want %d; body %s", strings.SplitN(ex.curl, "\n", 2)[0], code, ex.status, body)
		}
		if strings.Contains(body, canary) {
			t.Fatalf("response contains the secret value: %s", body)
		}
		if ex.status == 200 || ex.status == 201 {
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
		}
	}
	p.kill()
	if strings.Contains(logs.String(), canary) {
		t.Fatal("canary value in the server log")
	}
	if n := strings.Count(logs.String(), "stored unencrypted"); n != 1 {
		t.Fatalf("%d unencrypted warnings, want exactly one", n)
	}
}

// TestRestartKeepsAcknowledgedWrites writes secrets while the server is
// killed with SIGKILL, restarts it on the same data dir and checks that every
// write that got a 201 is there.
func TestRestartKeepsAcknowledgedWrites(t *testing.T) {
	dataDir := t.TempDir()
	logs := &syncBuffer{}
	p := startServer(t, dataDir, logs)
	token := firstUserToken(t, p.url)

	acked := map[string]bool{}
	for i := range 10 { // a few before the kill, surely acknowledged
		name := fmt.Sprintf("pre-%02d", i)
		if st, b := request(t, "POST", p.url+"/api/v2/users/me/secrets", token, secretBody(name)); st != 201 {
			t.Fatalf("create %s: %d %s", name, st, b)
		}
		acked[name] = true
	}
	var (
		mu     sync.Mutex
		stop   = make(chan struct{})
		racing = make(chan struct{}) // closed after 5 acknowledged writes
		wg     sync.WaitGroup
	)
	var closeOnce sync.Once
	for w := range 4 { // several writers, so some are in flight at the kill
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("during-%d-%03d", w, i)
				st, _ := request(t, "POST", p.url+"/api/v2/users/me/secrets", token, secretBody(name))
				if st == -1 {
					return // the server is gone
				}
				if st == 201 {
					mu.Lock()
					acked[name] = true
					if len(acked) >= 30 {
						closeOnce.Do(func() { close(racing) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	<-racing // writes are in flight: kill now
	p.kill()
	close(stop)
	wg.Wait()

	p2 := startServer(t, dataDir, logs)
	st, b := request(t, "GET", p2.url+"/api/v2/users/me/secrets", token, nil)
	if st != 200 {
		t.Fatalf("list after restart (old session token): %d %s", st, b)
	}
	var list []SecretResponse
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range list {
		have[s.Name] = true
	}
	for name := range acked {
		if !have[name] {
			t.Errorf("acknowledged write %s lost after kill -9", name)
		}
	}
	t.Logf("%d acknowledged writes, %d secrets after restart", len(acked), len(list))
	// The first user exists: a second "first" user is refused.
	if st, _ := request(t, "POST", p2.url+"/api/v2/users/first", "", map[string]string{
		"username": "eve", "email": "eve@example.com", "password": testPassword}); st != 409 {
		t.Fatalf("first user after restart: %d", st)
	}
	p2.kill()
	if strings.Contains(logs.String(), canary) {
		t.Fatal("canary value in the server log")
	}
}
