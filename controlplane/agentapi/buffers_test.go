package agentapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The websocket keeps the small buffers, not net/http's 4 KiB ones.
func TestSmallBuffersSizes(t *testing.T) {
	got := make(chan [2]int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := smallBuffers{ResponseWriter: w, read: 512, write: 1024}.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		got <- [2]int{brw.Reader.Size(), brw.Writer.Size()}
		_ = c.Close()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	select {
	case s := <-got:
		if s != [2]int{512, 1024} {
			t.Errorf("reader %d, writer %d bytes", s[0], s[1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not run")
	}
}

// The reader keeps its size when the client's first bytes, sent with the
// upgrade request, are more than it holds; they are read first, then what
// the client sends next.
func TestSmallBuffersEarlyBytesOverReader(t *testing.T) {
	type result struct {
		size int
		got  string
	}
	done := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := smallBuffers{ResponseWriter: w, read: 16, write: 16}.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = brw.Writer.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		if err := brw.Writer.Flush(); err != nil {
			t.Error(err)
		}
		b := make([]byte, 64+5)
		_, err = io.ReadFull(brw.Reader, b)
		if err != nil {
			t.Error(err)
		}
		done <- result{brw.Reader.Size(), string(b)}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	early := strings.Repeat("e", 64)
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + early)); err != nil {
		t.Fatal(err)
	}
	// The rest only once the server has answered: it is not in net/http's
	// buffer at the hijack.
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := br.ReadString('\n'); err != nil {
		t.Fatalf("reading the answer: %q %v", line, err)
	}
	if _, err := conn.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.size != 16 || r.got != early+"later" {
			t.Errorf("reader of %d bytes read %q", r.size, r.got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not finish")
	}
}

// A client that sends its first frame in the same packet as the upgrade
// request (net/http has already read it into its own buffer) loses nothing,
// and messages larger than both buffers arrive whole, both ways.
//
// The early frame (35 bytes) fits a 64-byte reader and not a 16-byte one
// (then the connection returned reads it first).
func TestSmallBuffersKeepEarlyBytes(t *testing.T) {
	for _, read := range []int{16, 64} {
		t.Run(strconv.Itoa(read), func(t *testing.T) { testSmallBuffersKeepEarlyBytes(t, read) })
	}
}

func testSmallBuffersKeepEarlyBytes(t *testing.T, read int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(smallBuffers{ResponseWriter: w, read: read, write: 16}, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, b); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n\r\n"
	early := []byte("sent with the upgrade request")
	big := make([]byte, 70000)
	_, _ = rand.Read(big)
	// One write: the request and the first frame in the same segment.
	if _, err := conn.Write(append([]byte(req), clientFrame(early)...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got := serverFrame(t, br); string(got) != string(early) {
		t.Fatalf("echo of the early frame: %q", got)
	}
	if _, err := conn.Write(clientFrame(big)); err != nil {
		t.Fatal(err)
	}
	if got := serverFrame(t, br); string(got) != string(big) {
		t.Fatalf("echo of %d bytes came back as %d different bytes", len(big), len(got))
	}
}

// clientFrame is one masked binary frame, as a client must send it.
func clientFrame(p []byte) []byte {
	f := []byte{0x82}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, b := range p {
		f = append(f, b^mask[i%4])
	}
	return f
}

// serverFrame reads one unmasked frame's payload.
func serverFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	h := make([]byte, 2)
	if _, err := io.ReadFull(r, h); err != nil {
		t.Fatal(err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		b := make([]byte, 2)
		_, _ = io.ReadFull(r, b)
		n = uint64(binary.BigEndian.Uint16(b))
	case 127:
		b := make([]byte, 8)
		_, _ = io.ReadFull(r, b)
		n = binary.BigEndian.Uint64(b)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return p
}
