package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/hashicorp/yamux"
)

// messages records each Write as one message.
type messages struct {
	msgs [][]byte
	err  error
}

func (m *messages) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	m.msgs = append(m.msgs, append([]byte(nil), p...))
	return len(p), nil
}

func header(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:8], 7) // stream ID
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func TestFrameJoiner(t *testing.T) {
	body := bytes.Repeat([]byte("b"), 5)
	big := bytes.Repeat([]byte("B"), maxPooledJoin+1)
	for _, tc := range []struct {
		name   string
		writes [][]byte
		want   []int // the length of each message sent
	}{
		{"data frame: header and body in one message", [][]byte{header(yamuxTypeData, 5), body}, []int{17}},
		{"window update: as it comes", [][]byte{header(1, 1<<20)}, []int{12}},
		{"ping and go-away: as they come", [][]byte{header(2, 9), header(3, 0)}, []int{12, 12}},
		{"data header of no body (a bare FIN): as it comes", [][]byte{header(yamuxTypeData, 0)}, []int{12}},
		{"a held header goes before whatever follows", [][]byte{header(yamuxTypeData, 5), header(1, 3)}, []int{24}},
		{"twelve bytes of body are not taken for a header", [][]byte{header(yamuxTypeData, 12), header(yamuxTypeData, 4)}, []int{24}},
		{"a body larger than the pooled buffers", [][]byte{header(yamuxTypeData, uint32(len(big))), big}, []int{12 + len(big)}},
		{"frames in a row", [][]byte{header(yamuxTypeData, 5), body, header(1, 1), header(yamuxTypeData, 5), body}, []int{17, 12, 17}},
		{"short and odd writes pass through", [][]byte{{1, 2, 3}, {}}, []int{3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m messages
			j := &FrameJoiner{W: &m}
			var in []byte
			for _, w := range tc.writes {
				n, err := j.Write(w)
				if err != nil || n != len(w) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
				}
				in = append(in, w...)
			}
			var got []int
			var out []byte
			for _, msg := range m.msgs {
				got = append(got, len(msg))
				out = append(out, msg...)
			}
			if !equalInts(got, tc.want) {
				t.Errorf("messages of %v bytes, want %v", got, tc.want)
			}
			if !bytes.Equal(out, in) {
				t.Error("the bytes sent differ from the bytes written")
			}
		})
	}
}

func TestFrameJoinerError(t *testing.T) {
	boom := errors.New("boom")
	m := &messages{err: boom}
	j := &FrameJoiner{W: m}
	if n, err := j.Write(header(yamuxTypeData, 3)); n != 12 || err != nil {
		t.Fatalf("held header: %d, %v", n, err)
	}
	if n, err := j.Write([]byte("abc")); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("body: %d, %v; want 0 and the writer's error", n, err)
	}
}

// TestFrameJoinerUnderYamux runs a yamux session whose client writes
// through a FrameJoiner: streams open, carry data both ways and close.
func TestFrameJoinerUnderYamux(t *testing.T) {
	a, b := net.Pipe()
	client, err := yamux.Client(&joinedConn{Conn: a, out: FrameJoiner{W: a}}, YamuxConfig(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := yamux.Server(b, YamuxConfig(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	go func() {
		for {
			st, err := server.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(st, st); _ = st.Close() }()
		}
	}()
	for i := range 20 {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*4000)
		// Close half-closes a yamux stream: the echo still comes back.
		go func() { _, _ = st.Write(msg); _ = st.Close() }()
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("stream %d: %d bytes back (%v), want %d", i, len(got), err, len(msg))
		}
	}
}

type joinedConn struct {
	net.Conn
	out FrameJoiner
}

func (c *joinedConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
