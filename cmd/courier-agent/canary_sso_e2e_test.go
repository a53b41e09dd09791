package main_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/controlplane/identity/oidc/oidctest"
)

// TestCanaryScanSSO: single sign-on through the real `courier server`
// process and the test OpenID provider process — a dashboard sign-in, a
// refused one (bad signature) and `courier login --sso` — and then the
// client secret and both session tokens must be nowhere they should not
// be: not in the server's debug log, its /proc cmdline or environ, its
// SQLite files, any URL the browser visited or any page it was shown; and
// no ID token (a JWT) in the log, the database or a URL.
func TestCanaryScanSSO(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/environ and cmdline")
	}
	bin := t.TempDir()
	courier := build(t, bin, "github.com/courierhq/courier/cmd/courier")
	clientSecret := newCanary(t, "oidc-client-secret")
	p := oidctest.Start(t, oidctest.Options{ClientID: "courier-canary", ClientSecret: clientSecret,
		RedirectURIs: []string{"http://127.0.0.1:*/api/v2/users/oidc/callback"},
		Users:        []oidctest.User{{Subject: "sub-ada", Username: "ada", Email: "ada@canary.test", Groups: []string{"admins"}}}})
	secretFile := filepath.Join(t.TempDir(), "oidc.secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServerProc(t, courier, "--oidc-issuer-url", p.URL, "--oidc-client-id", "courier-canary",
		"--oidc-client-secret-file", secretFile, "--oidc-admin-group", "admins", "--oidc-provider-name", "Canary IdP",
		"--disable-password-login")

	var places []place
	var visited []string
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		visited = append(visited, r.URL.String())
		return nil
	}}
	get := func(u string) (int, string) {
		t.Helper()
		visited = append(visited, u)
		res, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		places = append(places, place{"the page at " + res.Request.URL.Path, b})
		return res.StatusCode, string(b)
	}

	// The dashboard.
	if status, page := get(srv.url() + "/login"); status != 200 || !strings.Contains(page, "Sign in with Canary IdP") {
		t.Fatalf("login page %d:\n%s", status, page)
	}
	if status, page := get(srv.url() + "/login/oidc"); status != 200 || !strings.Contains(page, "ada") {
		t.Fatalf("signed-in page %d:\n%s", status, page)
	}
	srvURL, _ := url.Parse(srv.url())
	dashToken := ""
	for _, c := range jar.Cookies(srvURL) {
		if c.Name == "courier_session" {
			dashToken = c.Value
		}
	}
	if dashToken == "" {
		t.Fatal("no dashboard session")
	}
	// A refused sign-in: an ID token signed with a key not in the JWKS.
	p.SetMode(t, oidctest.ModeBadSignature)
	refused := &http.Client{Timeout: 30 * time.Second}
	refused.Jar, _ = cookiejar.New(nil)
	if res, err := refused.Get(srv.url() + "/login/oidc"); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	p.SetMode(t, oidctest.ModeNormal)

	// The CLI, its browser played by this test through $BROWSER.
	home := t.TempDir()
	urlFile := filepath.Join(home, "url")
	script := filepath.Join(home, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+urlFile+".tmp && mv "+urlFile+".tmp "+urlFile+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(home, "cfg")
	login := exec.Command(courier, "login", srv.url(), "--sso")
	login.Env = append(os.Environ(), "COURIER_CONFIG_DIR="+cfgDir, "BROWSER="+script)
	out := &logBuf{}
	login.Stdout, login.Stderr = out, out
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	var start []byte
	waitUntil(t, "the CLI to open the browser", func() bool {
		start, _ = os.ReadFile(urlFile)
		return len(start) > 0
	})
	_, confirm := get(string(start))
	m := regexp.MustCompile(`id="continue" href="([^"]+)"`).FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("no confirmation page:\n%s", confirm)
	}
	get(html.UnescapeString(m[1]))
	if err := login.Wait(); err != nil {
		t.Fatalf("courier login --sso: %v\n%s", err, out.String())
	}
	places = append(places, place{"the output of courier login --sso", []byte(out.String())})
	cfgBytes, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	cliToken := regexp.MustCompile(`"token":\s*"([^"]+)"`).FindStringSubmatch(string(cfgBytes))
	if cliToken == nil {
		t.Fatalf("no CLI session stored: %s", cfgBytes)
	}

	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		places = append(places, place{"the server's /proc/<pid>/" + f, b})
	}
	logAndDB := append([]place{{"the server log", []byte(srv.log.String())}}, filesUnder(t, srv.dataDir, "the server's data dir")...)
	places = append(places, logAndDB...)
	places = append(places, place{"the URLs visited", []byte(strings.Join(visited, "\n"))})
	scan(t, places, map[string]string{"the OIDC client secret": clientSecret,
		"the dashboard session token": dashToken, "the CLI session token": cliToken[1]})
	jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`)
	for _, pl := range append(logAndDB, place{"the URLs visited", []byte(strings.Join(visited, "\n"))}) {
		if jwt.Match(pl.data) {
			t.Errorf("an ID token (JWT) is in %s", pl.name)
		}
	}
	if !strings.Contains(srv.log.String(), "signed in with single sign-on") {
		t.Fatalf("the sign-ins are not in the server log:\n%s", srv.log.String())
	}
}
