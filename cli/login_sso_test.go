package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane"
	"github.com/courierhq/courier/controlplane/identity/oidc/oidctest"
)

const ssoSecret = "CLI-OIDC-SECRET-canary-91c2"

// startSSOServer runs a control plane whose people sign in with the test
// OpenID provider only (password login disabled).
func startSSOServer(t *testing.T) (string, *oidctest.Provider) {
	t.Helper()
	p := oidctest.Start(t, oidctest.Options{ClientID: "courier-cli-test", ClientSecret: ssoSecret,
		RedirectURIs: []string{"http://127.0.0.1:*/api/v2/users/oidc/callback"},
		Users:        []oidctest.User{{Subject: "sub-ada", Username: "ada", Email: "ada@example.com", Groups: []string{"admins"}}}})
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(ssoSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := controlplane.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BcryptCost = 4
	cfg.DisablePasswordLogin = true
	cfg.OIDC = controlplane.OIDCConfig{IssuerURL: p.URL, ClientID: "courier-cli-test", ClientSecretFile: secretFile,
		AdminGroup: "admins", ProviderName: "Test IdP"}
	srv, err := controlplane.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane Run: %v", err)
		}
		_ = srv.Close()
	})
	return srv.URL(), p
}

// startCLI starts courier with args and returns its stderr lines as they
// come, and a wait function.
func (c *cli) start(args ...string) (<-chan string, func() result) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, courierBin, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	lines := make(chan string, 64)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	if err := cmd.Start(); err != nil {
		cancel()
		c.t.Fatal(err)
	}
	return lines, func() result {
		defer cancel()
		err := cmd.Wait()
		pw.Close()
		<-scanned
		res := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		} else if err != nil {
			c.t.Fatalf("courier %v: %v", args, err)
		}
		return res
	}
}

// TestLoginSSOBrowser: courier login against a server with single sign-on
// only opens "the browser" ($BROWSER, a script that hands the URL to the
// test), which an HTTP client with a cookie jar plays: the server, the
// provider, back to the server, then to the CLI's loopback listener.
func TestLoginSSOBrowser(t *testing.T) {
	url, _ := startSSOServer(t)
	c := newCLI(t, "")
	urlFile := filepath.Join(c.home, "browser-url")
	script := filepath.Join(c.home, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+urlFile+".tmp && mv "+urlFile+".tmp "+urlFile+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "BROWSER="+script)
	_, wait := c.start("login", url)

	var start string
	deadline := time.Now().Add(30 * time.Second)
	for start == "" {
		if b, err := os.ReadFile(urlFile); err == nil {
			start = string(b)
		} else if time.Now().After(deadline) {
			t.Fatal("the CLI never opened the browser")
		} else {
			time.Sleep(20 * time.Millisecond) // polling a file the CLI's child writes
		}
	}
	if !strings.HasPrefix(start, url+"/login/oidc?") || !strings.Contains(start, "code_challenge_method=S256") ||
		!strings.Contains(start, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
		t.Fatalf("browser opened at %s", start)
	}
	jar, _ := cookiejar.New(nil)
	var visited []string
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		visited = append(visited, r.URL.String())
		return nil
	}}
	body := browse(t, hc, start)
	if !strings.Contains(body, "Sign in to the Courier CLI as <strong>ada</strong>") {
		t.Fatalf("no confirmation page: %s", body)
	}
	if body = browse(t, hc, continueLink(t, body)); !strings.Contains(body, "You can close this window") {
		t.Fatalf("the loopback listener answered %s", body)
	}
	res := wait()
	if res.code != 0 || !strings.Contains(res.stdout, "Logged in to "+url+" as ada") {
		t.Fatalf("login: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	who := c.ok(nil, "whoami")
	if !strings.Contains(who.stdout, "ada <ada@example.com> (admin)") {
		t.Fatalf("whoami: %s", who.stdout)
	}
	cfgBytes, err := os.ReadFile(filepath.Join(c.cfg, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`"token":\s*"([^"]+)"`).FindSubmatch(cfgBytes)
	if tok == nil {
		t.Fatalf("no token stored: %s", cfgBytes)
	}
	for _, u := range append(visited, start) { // the code in the Continue link is not a session token
		if strings.Contains(u, string(tok[1])) || strings.Contains(u, ssoSecret) {
			t.Fatalf("the session token or client secret is in the URL %s", u)
		}
	}
	if strings.Contains(res.all(), string(tok[1])) {
		t.Fatal("the session token was printed")
	}
}

func browse(t *testing.T, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	return string(body)
}

// continueLink is the href of the confirmation page's Continue link.
func continueLink(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`id="continue" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no Continue link: %s", page)
	}
	return html.UnescapeString(m[1])
}

// TestLoginSSONoBrowser: when no browser can be opened the URL is printed.
func TestLoginSSONoBrowser(t *testing.T) {
	url, _ := startSSOServer(t)
	c := newCLI(t, "")
	c.env = append(c.env, "BROWSER=/nonexistent/browser")
	lines, wait := c.start("login", url, "--sso")
	for l := range lines {
		if strings.Contains(l, "Could not open a browser") {
			break
		}
	}
	var printed string
	for l := range lines {
		if s := strings.TrimSpace(l); strings.HasPrefix(s, url+"/login/oidc?") {
			printed = s
			break
		}
	}
	if printed == "" {
		t.Fatal("the URL was not printed")
	}
	// Finish it, so the CLI exits.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	browse(t, hc, continueLink(t, browse(t, hc, printed)))
	if res := wait(); res.code != 0 {
		t.Fatalf("login: exit %d\n%s", res.code, res.all())
	}
}

func TestLoginSSODevice(t *testing.T) {
	url, p := startSSOServer(t)
	c := newCLI(t, "")
	lines, wait := c.start("login", url, "--device")
	codeRE := regexp.MustCompile(`enter the code (\S+)`)
	var code string
	for l := range lines {
		if m := codeRE.FindStringSubmatch(l); m != nil {
			code = strings.TrimSuffix(m[1], ")")
			break
		}
	}
	if code == "" {
		t.Fatal("no user code shown")
	}
	p.ApproveDevice(t, code)
	res := wait()
	if res.code != 0 || !strings.Contains(res.stdout, "as ada") {
		t.Fatalf("login --device: exit %d\n%s", res.code, res.all())
	}
}

// TestLoginPasswordRefusedWhenDisabled: --username on a server without
// password login is refused with the reason.
func TestLoginPasswordRefusedWhenDisabled(t *testing.T) {
	url, _ := startSSOServer(t)
	c := newCLI(t, "")
	res := c.run(str("whatever-password\n"), "login", url, "--username", "ada", "--password-stdin")
	if res.code == 0 || !strings.Contains(res.stderr, "password login is disabled") {
		t.Fatalf("exit %d: %s", res.code, res.all())
	}
}
