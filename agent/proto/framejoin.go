package proto

import (
	"encoding/binary"
	"io"
	"sync"
)

// yamux framing (github.com/hashicorp/yamux spec.md): a 12-byte header of
// version, type, flags and stream ID, then a length; a data frame's length
// bytes of body follow its header.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// FrameJoiner is the writer under a yamux session that carries it over a
// websocket, on either side. yamux's send loop writes a data frame's
// 12-byte header and its body in two calls; written as they come, each is
// a websocket message of its own, and on the agent connection each message
// is a write system call (and, on the control plane's side, a goroutine;
// see agentapi's wsConn). FrameJoiner holds such a header and writes it with
// the body that follows it, as one message: half the messages of every
// request and response, which is most of what an agent's connect and a
// restart storm write.
//
// The bytes written, and their order, are exactly yamux's: a held header
// goes out before anything written after it, whatever that is. Frames
// without a body (window updates, pings) are written as they come. Like
// any io.Writer under yamux it is called by one goroutine at a time (the
// session's send loop).
type FrameJoiner struct {
	// W gets each message.
	W io.Writer

	hdr  [yamuxHeaderSize]byte
	held bool
}

// Write implements io.Writer.
func (j *FrameJoiner) Write(p []byte) (int, error) {
	if !j.held && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		copy(j.hdr[:], p)
		j.held = true
		return len(p), nil
	}
	if !j.held {
		return j.W.Write(p)
	}
	bp := joinBufs.Get().(*[]byte)
	msg := append(append((*bp)[:0], j.hdr[:]...), p...)
	j.held = false
	_, err := j.W.Write(msg)
	if cap(msg) <= maxPooledJoin {
		*bp = msg
		joinBufs.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// maxPooledJoin bounds the buffers kept for reuse: a large body (a big
// secret's file) is joined in a buffer of its own and left to the GC.
const maxPooledJoin = 64 << 10

var joinBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
