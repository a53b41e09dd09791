package agentapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
)

// Buffer sizes an agent's websocket keeps for its connection's life.
// net/http hands a hijacked connection a 4 KiB reader and a 4 KiB writer,
// and the websocket keeps both: 8 KiB of a connected agent's ~50 KiB on the
// control plane, for a link that is idle nearly always. Reads bigger than
// the buffer go straight into the caller's slice and writes bigger than it
// straight to the socket, so small buffers cost a system call only on a
// frame that spans one, never a copy.
//
// Both are 128 bytes. Above the reader sits yamux's own 4 KiB reader, which
// asks for whole buffers: a frame's payload goes from the socket straight
// into it, and this buffer only holds the websocket header read with the
// start of a payload, or a small frame whole (a yamux header with its
// websocket header is 18 bytes; a ping is one). Writes are a yamux header
// (12 bytes) or a frame's body; a message of more than 124 bytes now takes
// a second write, as one of more than 508 did at 512 bytes. An idle agent
// costs one small frame each way per keepalive interval either way.
const (
	wsReadBuffer  = 128
	wsWriteBuffer = 128
)

// smallBuffers wraps an upgrade's ResponseWriter so that the websocket
// library, which hijacks through it, gets buffers of the given sizes in
// place of net/http's.
type smallBuffers struct {
	http.ResponseWriter
	read, write int
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack takes the connection over from net/http, keeping any bytes the
// client sent after its request (already read into net/http's buffer, as
// an agent's first frames often are) ahead of the rest: in the new reader's
// buffer when they fit, else in the connection returned, which reads them
// first. The websocket library takes what the reader holds and then reads
// the returned connection, so either way it gets them in order, and the
// reader keeps its size for the connection's life.
func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	w := bufio.NewWriterSize(c, s.write)
	n := brw.Reader.Buffered()
	if n == 0 {
		return c, bufio.NewReadWriter(bufio.NewReaderSize(c, s.read), w), nil
	}
	early, _ := brw.Reader.Peek(n)
	if n > s.read {
		pc := &prefixConn{Conn: c, early: bytes.Clone(early)}
		return pc, bufio.NewReadWriter(bufio.NewReaderSize(pc, s.read), w), nil
	}
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), c), s.read)
	// Pull them into r's buffer, where a caller that asks what is
	// buffered (the websocket library does) finds them.
	if _, err := r.Peek(n); err != nil {
		_ = c.Close()
		return nil, nil, errors.Join(errors.New("reading bytes buffered before the upgrade"), err)
	}
	return c, bufio.NewReadWriter(r, w), nil
}

// prefixConn is a connection whose first reads return early, the bytes a
// client sent before the hijack.
type prefixConn struct {
	net.Conn
	early []byte // nil once read
}

// Read implements io.Reader.
func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.early) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.early)
	if c.early = c.early[n:]; len(c.early) == 0 {
		c.early = nil
	}
	return n, nil
}
