// Package conn is the agent's end of the agent protocol: it dials the
// control plane's websocket endpoint, runs the client side of a yamux
// session over it, makes the protocol's HTTP requests on yamux streams,
// accepts the streams the control plane opens, and keeps reconnecting with
// capped, jittered backoff (Loop).
package conn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/internal/strictjson"
)

var (
	// ErrTokenRejected means the control plane refused the agent token
	// (HTTP 401). Retrying with the same token will not help until an
	// operator fixes it.
	ErrTokenRejected = errors.New("the control plane rejected the agent token")
	// ErrVersionMismatch means the control plane speaks another protocol
	// version; the error text carries the server's message naming both.
	ErrVersionMismatch = errors.New("agent protocol version mismatch")
	// ErrConfig is wrapped by Config.Validate failures.
	ErrConfig = errors.New("invalid connection config")
	// ErrSessionClosed is returned by requests on a closed session.
	ErrSessionClosed = errors.New("session closed")
	// ErrBadAnswer means an answer of the control plane could not be read:
	// too large, malformed JSON, wrong types, invalid UTF-8 or a repeated
	// key. Nothing from such an answer is used.
	ErrBadAnswer = errors.New("malformed answer from the control plane")
	// ErrReplaced is wrapped by Session.Err when the control plane closed
	// the session because a newer connection with the same workspace's
	// token replaced it (proto.CloseReplaced): another agent is serving
	// the workspace.
	ErrReplaced = errors.New(proto.CloseReplacedReason)
	// ErrRevoked is wrapped by Session.Err when the control plane closed
	// the session because the agent token stopped being valid while it was
	// connected (proto.CloseRevoked): the workspace was deleted, the token
	// rotated or expired, or the owner suspended or deleted. Like
	// ErrTokenRejected, retrying with the same token will not help.
	ErrRevoked = errors.New(proto.CloseRevokedReason)
	// ErrUnavailable is wrapped by an *UnavailableError: the control plane
	// answered 503, because it is shutting down or shedding load.
	ErrUnavailable = errors.New("the control plane is unavailable")
)

// UnavailableError is a 503 answer to the websocket upgrade. Loop waits
// RetryAfter (plus jitter) before the next attempt.
type UnavailableError struct {
	// RetryAfter is the server's Retry-After in seconds; 0 if it sent none.
	RetryAfter time.Duration
	// Message is the server's message.
	Message string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s: %s (retry after %s)", ErrUnavailable, e.Message, e.RetryAfter)
}

// Unwrap returns ErrUnavailable.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// StatusError is an upgrade refused with any other HTTP status: from the
// control plane, or from a proxy in front of it (a balancer answers 502 or
// 504 when no replica took the request). Loop retries it like any
// connection failure.
type StatusError struct {
	// Code is the HTTP status.
	Code int
	// Message is the server's message, if it sent one.
	Message string
	// Path is the path the upgrade was asked for.
	Path string
	// Err is the websocket library's error.
	Err error
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" && e.Code == http.StatusNotFound {
		// Something answered, but not a control plane's agent endpoint:
		// most often a URL with a path (the dashboard's /login) or one
		// that points at another service.
		msg = "no agent endpoint at " + e.Path + "; is the URL the control plane's base address?"
	}
	if msg == "" {
		return fmt.Sprintf("connecting to the control plane: HTTP %d: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("connecting to the control plane: HTTP %d: %s", e.Code, msg)
}

// Unwrap returns the websocket library's error.
func (e *StatusError) Unwrap() error { return e.Err }

// Config says where and how to connect.
type Config struct {
	// URL is the control plane's base URL, http:// or https://. Required.
	URL string
	// Token is the agent token. Required. It is sent only in a header.
	Token string
	// KeepaliveInterval and WriteTimeout bound dead-connection detection
	// (see proto.YamuxConfig). Defaults from package proto.
	KeepaliveInterval, WriteTimeout time.Duration
	// HTTPClient dials the websocket (TLS settings live here). Default
	// http.DefaultClient.
	HTTPClient *http.Client
	// RequestTimeout bounds the websocket handshake and each protocol
	// request. Default proto.DefaultRequestTimeout (30s).
	RequestTimeout time.Duration
	// AgentVersion is sent in proto.HeaderAgentVersion. Optional.
	AgentVersion string
}

// CheckURL reports whether raw is usable as a control plane's base URL: an
// absolute http:// or https:// address with a host (a path is a prefix the
// agent endpoint is found under), without a query or fragment.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if raw != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil {
		return nil
	}
	shown := raw
	if err == nil && u.User != nil {
		shown = u.Redacted() // never a password in a log line
	}
	return fmt.Errorf("the control plane URL must be an http:// or https:// address such as https://courier.example.com, without credentials, a query or a fragment; got %q", shown)
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if err := CheckURL(c.URL); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch {
	case c.Token == "":
		return fmt.Errorf("%w: an agent token is required", ErrConfig)
	}
	return nil
}

// Session is one connection to the control plane.
type Session struct {
	mux     *yamux.Session
	conn    *recordingConn
	client  *http.Client
	timeout time.Duration
	// features is the control plane's proto.HeaderControlFeatures.
	features string
}

// ControlHas reports whether the control plane announced feature f on
// this session's upgrade.
func (s *Session) ControlHas(f string) bool { return proto.HasFeature(s.features, f) }

// ReportRuns sends script and app runs; only to a control plane that
// announced proto.FeatureStartupLogs.
func (s *Session) ReportRuns(ctx context.Context, r proto.RunReport) error {
	return s.do(ctx, http.MethodPost, proto.PathRuns, r, nil)
}

// recordingConn keeps the first read error of the websocket, which carries
// the control plane's close code and reason.
type recordingConn struct {
	net.Conn
	// out joins each yamux data frame's header to its body, so that the
	// two are one websocket message; its W is the embedded Conn.
	out proto.FrameJoiner

	// mu guards readErr.
	mu      sync.Mutex
	readErr error
}

// Write writes yamux's bytes through the FrameJoiner.
func (c *recordingConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.readErr == nil {
			c.readErr = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordingConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// Dial connects to the control plane and starts a yamux session. Errors
// wrap ErrTokenRejected or ErrVersionMismatch when the server said so.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = strings.TrimSuffix(u.Path, "/") + proto.ConnectPath
	hdr := http.Header{}
	hdr.Set(proto.HeaderToken, cfg.Token)
	hdr.Set(proto.HeaderVersion, proto.Version)
	hdr.Set(proto.HeaderAgentFeatures, proto.FeatureSSHPeer+","+proto.FeatureStartupLogs)
	if cfg.AgentVersion != "" {
		hdr.Set(proto.HeaderAgentVersion, cfg.AgentVersion)
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = proto.DefaultRequestTimeout
	}
	// The handshake is bounded like any request: a control plane that
	// accepts TCP and never answers (a blackholed path) must not hold the
	// agent forever; the reconnect loop tries again.
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, resp, err := websocket.Dial(hctx, u.String(), &websocket.DialOptions{HTTPClient: cfg.HTTPClient, HTTPHeader: hdr})
	if err != nil {
		return nil, dialError(resp, u.Path, err)
	}
	// The websocket lives until the session closes, not until ctx ends.
	nc := &recordingConn{Conn: websocket.NetConn(context.Background(), c, websocket.MessageBinary)}
	nc.out.W = nc.Conn
	// After NetConn, which turns the read limit off.
	c.SetReadLimit(proto.MaxMessageBytes)
	mux, err := yamux.Client(nc, proto.YamuxConfig(cfg.KeepaliveInterval, cfg.WriteTimeout))
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	s := &Session{mux: mux, conn: nc, timeout: timeout}
	if resp != nil {
		s.features = resp.Header.Get(proto.HeaderControlFeatures)
	}
	s.client = &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return mux.OpenStream() },
		// One stream per request keeps requests independent; streams are cheap.
		DisableKeepAlives: true,
	}}
	return s, nil
}

// dialError turns a failed upgrade into a typed error, reading the server's
// JSON message when there is one.
func dialError(resp *http.Response, path string, err error) error {
	if resp == nil {
		return fmt.Errorf("connecting to the control plane: %w", err)
	}
	msg := ""
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e proto.ErrorResponse
		if json.Unmarshal(body, &e) == nil {
			msg = e.Message
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrTokenRejected, msg)
	case proto.StatusVersionMismatch:
		return fmt.Errorf("%w: %s", ErrVersionMismatch, msg)
	case http.StatusServiceUnavailable:
		ue := &UnavailableError{Message: msg}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			ue.RetryAfter = time.Duration(min(secs, 3600)) * time.Second
		}
		return ue
	}
	return &StatusError{Code: resp.StatusCode, Message: msg, Path: path, Err: err}
}

// Done is closed when the session ends (closed, or keepalive failed).
func (s *Session) Done() <-chan struct{} { return s.mux.CloseChan() }

// Err says why the websocket under the session ended: an error wrapping
// ErrReplaced when the control plane closed it because a newer connection
// replaced this one, ErrRevoked when its token stopped being valid, the
// transport's error otherwise, and nil while it is
// up (or when it was closed from this side without a read failing).
func (s *Session) Err() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.err()
	switch websocket.CloseStatus(err) {
	case proto.CloseReplaced:
		return fmt.Errorf("%w (websocket close code %d)", ErrReplaced, proto.CloseReplaced)
	case proto.CloseRevoked:
		// The reason is the control plane's, e.g. "agent token revoked: the
		// token was rotated"; it never carries a token.
		var ce websocket.CloseError
		reason := ""
		if errors.As(err, &ce) {
			reason = strings.TrimPrefix(strings.TrimPrefix(ce.Reason, proto.CloseRevokedReason), ": ")
		}
		if reason == "" {
			return fmt.Errorf("%w (websocket close code %d)", ErrRevoked, proto.CloseRevoked)
		}
		return fmt.Errorf("%w: %s (websocket close code %d)", ErrRevoked, reason, proto.CloseRevoked)
	}
	return err
}

// Close ends the session.
func (s *Session) Close() error {
	s.client.CloseIdleConnections()
	return s.mux.Close()
}

// Accept waits for a stream the control plane opened and returns it with
// its kind byte (proto.StreamSSH).
func (s *Session) Accept() (net.Conn, byte, error) {
	st, err := s.mux.AcceptStream()
	if err != nil {
		return nil, 0, err
	}
	var kind [1]byte
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(st, kind[:]); err != nil {
		_ = st.Close()
		return nil, 0, fmt.Errorf("reading stream kind: %w", err)
	}
	_ = st.SetReadDeadline(time.Time{})
	return st, kind[0], nil
}

func (s *Session) do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, proto.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set(proto.HeaderVersion, proto.Version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if s.mux.IsClosed() {
			return fmt.Errorf("%s %s: %w", method, path, ErrSessionClosed)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e proto.ErrorResponse
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		if resp.StatusCode == proto.StatusVersionMismatch {
			return fmt.Errorf("%w: %s", ErrVersionMismatch, e.Message)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Message)
	}
	if out == nil {
		return nil
	}
	if err := decodeAnswer(resp.Body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// decodeAnswer reads one JSON answer of the control plane into out. It
// refuses, before decoding, an answer over proto.MaxBodyBytes and one that
// encoding/json would read differently from its sender (invalid UTF-8, a
// repeated key: see package strictjson). Errors wrap ErrBadAnswer and never
// quote the answer, which may hold secret values.
func decodeAnswer(body io.Reader, out any) error {
	data, err := io.ReadAll(io.LimitReader(body, proto.MaxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading it: %w", ErrBadAnswer, err)
	}
	if len(data) > proto.MaxBodyBytes {
		return fmt.Errorf("%w: it is larger than the %d-byte limit", ErrBadAnswer, proto.MaxBodyBytes)
	}
	if err := strictjson.Check(data); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: field %q has the wrong JSON type (want %s)", ErrBadAnswer, te.Field, te.Type)
		}
		return fmt.Errorf("%w: it does not decode", ErrBadAnswer)
	}
	return nil
}

// Manifest fetches the workspace manifest.
func (s *Session) Manifest(ctx context.Context) (proto.Manifest, error) {
	var m proto.Manifest
	err := s.do(ctx, http.MethodGet, proto.PathManifest, nil, &m)
	return m, err
}

// Secrets fetches the owner's secrets, with values, and the secrets
// revision they are at least as new as.
func (s *Session) Secrets(ctx context.Context) (proto.SecretsResponse, error) {
	var r proto.SecretsResponse
	err := s.do(ctx, http.MethodGet, proto.PathSecrets, nil, &r)
	return r, err
}

// ReadSecretsChanged reads the message of a proto.StreamSecretsChanged
// stream (after its kind byte) and closes the stream. It decodes as strictly
// as the protocol's answers (decodeAnswer), within
// proto.MaxSecretsChangedBytes; errors wrap ErrBadAnswer.
func ReadSecretsChanged(st net.Conn) (proto.SecretsChanged, error) {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	var m proto.SecretsChanged
	err := decodeAnswer(io.LimitReader(st, proto.MaxSecretsChangedBytes+1), &m)
	if err == nil && m.Revision < 0 {
		err = fmt.Errorf("%w: negative revision %d", ErrBadAnswer, m.Revision)
	}
	return m, err
}

// ReportLifecycle sends a lifecycle state.
func (s *Session) ReportLifecycle(ctx context.Context, r proto.LifecycleReport) error {
	return s.do(ctx, http.MethodPost, proto.PathLifecycle, r, nil)
}

// ReportLogs sends script or app output.
func (s *Session) ReportLogs(ctx context.Context, r proto.LogReport) error {
	return s.do(ctx, http.MethodPost, proto.PathLogs, r, nil)
}

// ReportApply sends the outcome of an apply.
func (s *Session) ReportApply(ctx context.Context, r proto.ApplyReport) error {
	return s.do(ctx, http.MethodPost, proto.PathApply, r, nil)
}
