package agentapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// streams is the one listener of the Server's one http.Server: every
// session's accept loop hands it the yamux streams its agent opens, each
// tagged with its session. One server for all sessions instead of one
// each saves its memory on every connection.
type streams struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

// sessionStream is a stream and the session it came on.
type sessionStream struct {
	net.Conn
	sess *session
}

func newStreams() *streams { return &streams{ch: make(chan net.Conn), done: make(chan struct{})} }

// Accept implements net.Listener.
func (l *streams) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it may be called twice.
func (l *streams) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *streams) Addr() net.Addr { return streamsAddr{} }

type streamsAddr struct{}

func (streamsAddr) Network() string { return "yamux" }
func (streamsAddr) String() string  { return "agent-sessions" }

// offer hands st, opened on sess, to the server; false once it is closed.
func (l *streams) offer(st net.Conn, sess *session) bool {
	select {
	case l.ch <- &sessionStream{Conn: st, sess: sess}:
		return true
	case <-l.done:
		return false
	}
}

// newStreamServer returns the http.Server that serves every session's
// streams; a request's session is in its context (sessionOf).
func (s *Server) newStreamServer() *http.Server {
	return &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: s.httpLog,
		BaseContext: func(net.Listener) context.Context { return s.base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, sessionKey{}, c.(*sessionStream).sess)
		},
		// Plain HTTP/1.1 on yamux streams: a non-nil map keeps the server
		// from setting up HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
}
