package agentapi

import (
	"encoding/binary"
	"testing"
)

func yamuxFrame(typ byte, flags uint16, id uint32, body []byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[0], h[1] = 0, typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], length)
	return append(h, body...)
}

// The scanner counts stream-opening frames however the bytes are cut, and
// is not fooled by a SYN flag's bytes inside a data frame's body.
func TestSynScannerCountsOpensAcrossAnyCuts(t *testing.T) {
	// A body that looks like a window update with SYN.
	fake := yamuxFrame(1, 1, 99, nil, 0)
	var stream []byte
	stream = append(stream, yamuxFrame(1, 1, 1, nil, 0)...)                  // open 1 (window update + SYN)
	stream = append(stream, yamuxFrame(0, 0, 1, fake, uint32(len(fake)))...) // data on 1
	stream = append(stream, yamuxFrame(2, 1, 0, nil, 7)...)                  // ping with SYN flag: not a stream
	stream = append(stream, yamuxFrame(0, 1, 3, []byte("hi"), 2)...)         // open 3 (data + SYN)
	stream = append(stream, yamuxFrame(1, 2, 1, nil, 0)...)                  // ACK
	stream = append(stream, yamuxFrame(0, 4, 3, nil, 0)...)                  // FIN, empty body
	stream = append(stream, yamuxFrame(1, 1|2, 5, nil, 0)...)                // SYN|ACK together
	stream = append(stream, yamuxFrame(3, 0, 0, nil, 0)...)                  // go away
	stream = append(stream, yamuxFrame(0, 0, 5, make([]byte, 300), 300)...)  // a larger body
	stream = append(stream, yamuxFrame(1, 1, 7, nil, 0)...)                  // open 7
	const want = 4
	for _, cut := range []int{1, 2, 3, 5, 7, 11, 12, 13, 64, 512, len(stream)} {
		var s synScanner
		got := 0
		for i := 0; i < len(stream); i += cut {
			got += s.scan(stream[i:min(i+cut, len(stream))])
		}
		if got != want {
			t.Errorf("reads of %d bytes: counted %d opens, want %d", cut, got, want)
		}
		if s.have != 0 || s.body != 0 {
			t.Errorf("reads of %d bytes: left mid-frame (%d header bytes, %d body bytes)", cut, s.have, s.body)
		}
	}
}

// A hostile length cannot make the scanner loop or count wrongly: a
// huge body swallows what follows, as it does for yamux.
func TestSynScannerHugeBody(t *testing.T) {
	var s synScanner
	if n := s.scan(yamuxFrame(0, 1, 1, nil, 0xFFFFFFFF)); n != 1 {
		t.Fatalf("counted %d", n)
	}
	if n := s.scan(yamuxFrame(1, 1, 3, nil, 0)); n != 0 {
		t.Fatalf("a frame inside a body was counted (%d)", n)
	}
	if s.body != 0xFFFFFFFF-yamuxHeaderSize {
		t.Fatalf("body left %d", s.body)
	}
}
