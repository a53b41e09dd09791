package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/courierhq/courier/client"
)

// Single sign-on from the CLI (issue 19 part 1).
//
// The browser flow works as gh auth login and gcloud auth login do: the
// CLI listens on 127.0.0.1 at a random port and opens the browser at the
// control plane's /login/oidc with that loopback address, a PKCE challenge
// (S256) and a state. The control plane runs the OpenID Connect code flow
// with the provider (it holds the client secret) and at the end sends the
// browser to the loopback address with a one-time code, which the CLI
// redeems with the PKCE verifier for a session token. The session token
// never travels in a URL, and a code caught on the way is useless without
// the verifier, which never leaves the CLI.
//
// --device is for machines without a browser: the control plane starts the
// provider's device authorization grant and keeps the provider's device
// code; the CLI shows where to go and which code to enter, and polls the
// control plane with a handle of its own until the person has approved.

// ssoTimeout bounds the wait for the browser or the device approval.
const ssoTimeout = 10 * time.Minute

// openBrowser opens url in a browser. Tests replace it; $BROWSER, when set,
// names the program to run instead of xdg-open or open.
var openBrowser = func(ctx context.Context, u string) error {
	var cmd *exec.Cmd
	switch b := os.Getenv("BROWSER"); {
	case b != "":
		cmd = exec.CommandContext(ctx, b, u)
	case runtime.GOOS == "darwin":
		cmd = exec.CommandContext(ctx, "open", u)
	case runtime.GOOS == "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	return cmd.Start() // the browser outlives this call; its exit status says little
}

func randomURLSafe(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// loopbackResult is what the browser brought to the listener.
type loopbackResult struct {
	code string
	err  error
}

// browserLogin runs the loopback flow and returns a session token.
func browserLogin(ctx context.Context, c *client.Client, stderr io.Writer) (string, error) {
	verifier, err := randomURLSafe(32)
	if err != nil {
		return "", err
	}
	state, err := randomURLSafe(24)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen for the browser: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	results := make(chan loopbackResult, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res loopbackResult
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			// Not our sign-in (or a page trying its luck): ignore it.
			http.Error(w, "This is not the sign-in courier login is waiting for.", http.StatusBadRequest)
			return
		case q.Get("code") == "":
			res.err = errors.New("the control plane sent no code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "Signed in to Courier. You can close this window and return to the terminal.")
		select {
		case results <- res:
		default:
		}
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	start := c.URL() + "/login/oidc?" + url.Values{"redirect_uri": {redirect}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "state": {state}}.Encode()
	if err := openBrowser(ctx, start); err != nil {
		fmt.Fprintf(stderr, "Could not open a browser (%v). Open this URL to sign in:\n\n  %s\n\n", err, start)
	} else {
		fmt.Fprintf(stderr, "Opened your browser to sign in. If it did not open, visit:\n\n  %s\n\n", start)
	}
	wctx, cancel := context.WithTimeout(ctx, ssoTimeout)
	defer cancel()
	var res loopbackResult
	select {
	case res = <-results:
	case <-wctx.Done():
		return "", errors.New("timed out waiting for the browser sign-in (try --device on a machine without a browser)")
	}
	if res.err != nil {
		return "", res.err
	}
	token, err := c.OIDCToken(ctx, client.OIDCTokenRequest{Code: res.code, CodeVerifier: verifier})
	if err != nil {
		return "", fmt.Errorf("redeem the sign-in code: %w", err)
	}
	return token, nil
}

// deviceLogin runs the device authorization grant through the control
// plane and returns a session token.
func deviceLogin(ctx context.Context, c *client.Client, stderr io.Writer) (string, error) {
	d, err := c.OIDCDeviceStart(ctx)
	if err != nil {
		return "", fmt.Errorf("start the device sign-in: %w", err)
	}
	if d.VerificationURIComplete != "" {
		fmt.Fprintf(stderr, "To sign in, open %s\n(or open %s and enter the code %s)\n", cell(d.VerificationURIComplete), cell(d.VerificationURI), cell(d.UserCode))
	} else {
		fmt.Fprintf(stderr, "To sign in, open %s and enter the code %s\n", cell(d.VerificationURI), cell(d.UserCode))
	}
	fmt.Fprintln(stderr, "Waiting for approval…")
	interval := time.Duration(d.Interval) * time.Second
	wctx, cancel := context.WithTimeout(ctx, ssoTimeout)
	defer cancel()
	for {
		if interval < time.Second {
			interval = time.Second
		}
		t := time.NewTimer(interval)
		select {
		case <-wctx.Done():
			t.Stop()
			return "", errors.New("timed out waiting for the device sign-in to be approved")
		case <-t.C:
		}
		tok, err := c.OIDCDevicePoll(ctx, d.DeviceRequest)
		if err != nil {
			return "", fmt.Errorf("device sign-in: %w", err)
		}
		if !tok.Pending {
			return tok.SessionToken, nil
		}
		if tok.Interval > 0 {
			interval = time.Duration(tok.Interval) * time.Second
		}
	}
}

// useSSO decides whether login signs in with single sign-on: asked for,
// or the only way the server offers. An older server without the
// authmethods route means password login.
func useSSO(ctx context.Context, c *client.Client, asked bool) (bool, error) {
	m, err := c.AuthMethods(ctx)
	if err != nil {
		if asked {
			return false, fmt.Errorf("ask the server how to sign in: %w", err)
		}
		return false, nil
	}
	switch {
	case asked && !m.OIDC.Enabled:
		return false, errors.New("this server has no single sign-on; log in with a password")
	case asked:
		return true, nil
	case m.OIDC.Enabled && !m.Password.Enabled:
		return true, nil
	}
	// Passwords on, or an answer that names no method at all (not a
	// Courier that knows the route): a password login says what is wrong.
	return false, nil
}
