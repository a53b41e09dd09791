package conn

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// TestReadSecretsChanged: a secrets-changed message is decoded as strictly
// as any answer; anything odd is refused with ErrBadAnswer.
func TestReadSecretsChanged(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want int64
		ok   bool
	}{
		{"plain", `{"revision": 7}`, 7, true},
		{"unknown field ignored", `{"revision": 7, "later": true}`, 7, true},
		{"repeated key", `{"revision": 1, "revision": 9}`, 0, false},
		{"negative", `{"revision": -1}`, 0, false},
		{"wrong type", `{"revision": "7"}`, 0, false},
		{"not json", `revision=7`, 0, false},
		{"invalid utf-8", "{\"revision\": 7, \"x\": \"\xff\"}", 0, false},
		{"too long", `{"revision": 7, "pad": "` + strings.Repeat("a", 2000) + `"}`, 0, false},
		{"empty", ``, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			go func() { _, _ = a.Write([]byte(tt.msg)); _ = a.Close() }()
			m, err := ReadSecretsChanged(b)
			switch {
			case tt.ok && (err != nil || m.Revision != tt.want):
				t.Fatalf("got %+v, %v; want revision %d", m, err, tt.want)
			case !tt.ok && !errors.Is(err, ErrBadAnswer):
				t.Fatalf("got %+v, %v; want ErrBadAnswer", m, err)
			}
		})
	}
}
