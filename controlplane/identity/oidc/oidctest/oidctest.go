// Package oidctest runs the test OpenID provider (the module under
// ../testdata/provider, built on zitadel/oidc's op) as a separate process
// for tests: real discovery, JWKS, signatures and key rotation over HTTP.
// Only tests import it.
package oidctest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a person the provider knows.
type User struct {
	Subject, Username, Email string
	Unverified               bool
	Groups                   []string
}

func (u User) flag() string {
	return fmt.Sprintf("sub=%s,username=%s,email=%s,verified=%t,groups=%s",
		u.Subject, u.Username, u.Email, !u.Unverified, strings.Join(u.Groups, ";"))
}

// Options configure a provider.
type Options struct {
	ClientID, ClientSecret string
	// RedirectURIs allowed (path.Match globs such as
	// "http://127.0.0.1:*/api/v2/users/oidc/callback").
	RedirectURIs []string
	Users        []User
	// Listen is the address; default 127.0.0.1:0.
	Listen string
}

// Token modes of SetMode.
const (
	ModeNormal        = "normal"
	ModeWrongAudience = "wrong-audience"
	ModeExpired       = "expired"
	ModeBadSignature  = "bad-signature"
)

// Provider is a running provider process.
type Provider struct {
	// URL is the issuer URL.
	URL    string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// sourceDir is the provider module's directory.
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "provider")
}

// Build compiles the provider once per test process, into a temp path
// named after its sources (so later runs reuse it).
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := sourceDir()
		h := sha256.New()
		for _, f := range []string{"main.go", "go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				buildErr = err
				return
			}
			h.Write(b)
		}
		binary = filepath.Join(os.TempDir(), "courier-oidc-provider-"+hex.EncodeToString(h.Sum(nil))[:12])
		if _, err := os.Stat(binary); err == nil {
			return
		}
		tmp := binary + ".tmp" + fmt.Sprint(os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the test provider: %v\n%s", err, out)
			return
		}
		buildErr = os.Rename(tmp, binary)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Start builds and starts a provider; it is stopped when the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	bin := Build(t)
	args := []string{"-client-id", o.ClientID, "-client-secret", o.ClientSecret}
	if o.Listen != "" {
		args = append(args, "-listen", o.Listen)
	}
	for _, r := range o.RedirectURIs {
		args = append(args, "-redirect-uri", r)
	}
	for _, u := range o.Users {
		args = append(args, "-user", u.flag())
	}
	p := &Provider{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.Stop()
		t.Fatalf("test provider did not start: %v\n%s", err, p.stderr)
	}
	p.URL = strings.TrimSpace(line)
	return p
}

// Stop ends the process (the provider goes down); safe to call twice.
func (p *Provider) Stop() {
	if p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func (p *Provider) post(t testing.TB, path string, form url.Values) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.PostForm(p.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// SetUser makes subject the person of the next sign-ins.
func (p *Provider) SetUser(t testing.TB, subject string) {
	p.post(t, "/test/config", url.Values{"user": {subject}})
}

// SetMode makes the next ID tokens normal or broken in one way.
func (p *Provider) SetMode(t testing.TB, mode string) {
	p.post(t, "/test/config", url.Values{"mode": {mode}})
}

// Rotate publishes a new signing key (the old one stays in the JWKS) and
// signs with it from now on.
func (p *Provider) Rotate(t testing.TB) { p.post(t, "/test/rotate", nil) }

// ApproveDevice approves the device authorization of userCode as the
// current user, as a person would in a browser.
func (p *Provider) ApproveDevice(t testing.TB, userCode string) {
	t.Helper()
	resp, err := http.Get(p.URL + "/device?user_code=" + url.QueryEscape(userCode))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve device: %s", resp.Status)
	}
}

// Log is what the provider wrote to stderr.
func (p *Provider) Log() string { return p.stderr.String() }
