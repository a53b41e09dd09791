package agentapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/proto"
)

// wsConn carries an agent's yamux session over its websocket: each Write is
// one binary message, and Read returns the bytes of the messages in order.
// It is what websocket.NetConn does, less what an idle agent does not need
// and every agent pays for: NetConn keeps two cancelable contexts and two
// timers for deadlines (yamux sets none), and registers a context callback
// around every read, which stays registered while the connection idles
// (~1.5 KiB of heap per agent in all). Reads and writes here pass no
// context; a blocked read or write ends when the connection is closed,
// which is how every session ends (Close, from yamux).
//
// It also counts the streams the agent opens (yamux frames with the SYN
// flag in what Read hands yamux), so that the session needs a goroutine
// accepting streams only while one is on its way rather than for its whole
// life (see Server.acceptStreams).
type wsConn struct {
	c *websocket.Conn
	// events hears of the streams the agent opens (from Read, before
	// yamux queues them) and, once, of the first Close.
	events connEvents

	// Read's state; only yamux's receive loop reads.
	r    io.Reader // the message being read; nil between messages
	eof  bool
	scan synScanner

	closeOnce sync.Once

	// out joins each yamux data frame's header to its body (one message,
	// not two); its W is the wsConn as a wsWriter.
	out proto.FrameJoiner
}

// newWSConn returns the wsConn over c that reports to events.
func newWSConn(c *websocket.Conn, events connEvents) *wsConn {
	w := &wsConn{c: c, events: events}
	w.out.W = (*wsWriter)(w)
	return w
}

// Read implements io.Reader.
func (w *wsConn) Read(p []byte) (int, error) {
	for {
		n, err := w.read(p)
		if n > 0 {
			for range w.scan.scan(p[:n]) {
				w.events.streamOpening()
			}
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (w *wsConn) read(p []byte) (int, error) {
	if w.eof {
		return 0, io.EOF
	}
	if w.r == nil {
		typ, r, err := w.c.Reader(context.Background())
		if err != nil {
			switch websocket.CloseStatus(err) {
			case websocket.StatusNormalClosure, websocket.StatusGoingAway:
				w.eof = true
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.MessageBinary {
			err := fmt.Errorf("unexpected frame type read (expected %v): %v", websocket.MessageBinary, typ)
			_ = w.c.Close(websocket.StatusUnsupportedData, err.Error())
			return 0, err
		}
		w.r = r
	}
	n, err := w.r.Read(p)
	if errors.Is(err, io.EOF) {
		w.r, err = nil, nil
	}
	return n, err
}

// Write implements io.Writer: yamux's bytes, sent as binary messages (see
// proto.FrameJoiner).
func (w *wsConn) Write(p []byte) (int, error) { return w.out.Write(p) }

// wsWriter is a wsConn's message writer, under its FrameJoiner.
type wsWriter wsConn

// Write sends p as one binary message.
//
// A short-lived goroutine writes it while the caller, yamux's send loop (the
// session's one writer), waits. The write through the websocket library and
// the socket takes ~1.7 KiB of stack, and a goroutine that ran it once keeps
// a 4 KiB stack for life: the runtime halves a stack only while less than a
// quarter of it is in use, and a parked send loop uses more than that. Run
// elsewhere, the send loop stays within the 2 KiB a goroutine starts with
// when the runtime's adaptive start is off (GODEBUG=adaptivestackstart=0,
// as the deployment files set; see BENCHMARKS.md): 2 KiB less per agent
// for a goroutine start per message written.
func (w *wsWriter) Write(p []byte) (int, error) {
	op := writeOps.Get().(*writeOp)
	op.c, op.p = w.c, p
	go op.run()
	err := <-op.done
	op.c, op.p = nil, nil
	writeOps.Put(op)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeOp is one message for wsConn.Write's writer; they are reused.
type writeOp struct {
	c    *websocket.Conn
	p    []byte
	done chan error
}

var writeOps = sync.Pool{New: func() any { return &writeOp{done: make(chan error, 1)} }}

func (op *writeOp) run() { op.done <- op.c.Write(context.Background(), websocket.MessageBinary, op.p) }

// Close closes the connection at once, without a close handshake: the
// session is over (yamux closes its connection as the session ends, for
// whatever reason), and a handshake would make Server.Close wait a round
// trip per agent. A websocket.NetConn closed the connection at once as
// well, through the context callback of its pending read. The close codes
// that mean something to an agent (replaced, revoked) are sent on the
// websocket itself before the session is closed.
func (w *wsConn) Close() error {
	err := w.c.CloseNow()
	w.closeOnce.Do(w.events.connClosed)
	return err
}

// connEvents is what a wsConn reports (implemented by *session).
type connEvents interface {
	streamOpening()
	connClosed()
}

// yamux framing (github.com/hashicorp/yamux spec.md): a 12-byte header of
// version, type, flags (big endian), stream ID and length; a data frame's
// length bytes of body follow it.
const (
	yamuxHeaderSize       = 12
	yamuxTypeData         = 0
	yamuxTypeWindowUpdate = 1
	yamuxFlagSYN          = 1
)

// synScanner follows yamux frame boundaries across reads of any size and
// counts the frames that open a stream.
type synScanner struct {
	hdr  [yamuxHeaderSize]byte
	have int    // bytes of hdr read
	body uint32 // bytes of the current data frame's body still to come
}

// scan consumes p and returns how many stream-opening frames ended in it.
func (s *synScanner) scan(p []byte) int {
	syns := 0
	for len(p) > 0 {
		if s.body > 0 {
			k := uint32(min(len(p), int(min(s.body, 1<<30))))
			p, s.body = p[k:], s.body-k
			continue
		}
		k := copy(s.hdr[s.have:], p)
		p, s.have = p[k:], s.have+k
		if s.have < yamuxHeaderSize {
			break
		}
		s.have = 0
		typ, flags := s.hdr[1], binary.BigEndian.Uint16(s.hdr[2:4])
		if (typ == yamuxTypeData || typ == yamuxTypeWindowUpdate) && flags&yamuxFlagSYN != 0 {
			syns++
		}
		if typ == yamuxTypeData {
			s.body = binary.BigEndian.Uint32(s.hdr[8:12])
		}
	}
	return syns
}
