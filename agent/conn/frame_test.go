package conn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/courierhq/courier/agent/conn"
	"github.com/courierhq/courier/agent/proto"
)

// TestOversizeFrameEndsSession: a control plane that sends a websocket
// message over proto.MaxMessageBytes, or bytes that are not yamux, ends the
// session cleanly: no panic, Done closed, requests fail. The oversize
// message is refused by the read limit itself (close status 1009, "message
// too big"), not noticed later by keepalive: websocket.NetConn turns the
// read limit off, so it must be set after it.
func TestOversizeFrameEndsSession(t *testing.T) {
	for name, tc := range map[string]struct {
		msg    []byte
		status websocket.StatusCode // the close status the agent must send; -1: any
	}{
		// Zero bytes parse as empty yamux frames: only the limit refuses them.
		"oversize message": {make([]byte, 2*proto.MaxMessageBytes), websocket.StatusMessageTooBig},
		"not yamux":        {[]byte("HTTP/1.1 200 OK\r\n\r\n{}"), -1},
	} {
		t.Run(name, func(t *testing.T) {
			closed := make(chan websocket.StatusCode, 1)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer c.CloseNow()
				ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
				defer cancel()
				_ = c.Write(ctx, websocket.MessageBinary, tc.msg)
				for {
					if _, _, err := c.Read(ctx); err != nil {
						closed <- websocket.CloseStatus(err)
						return
					}
				}
			}))
			defer hs.Close()
			// Keepalive far off: only the refusal can end the session.
			s, err := conn.Dial(context.Background(), conn.Config{URL: hs.URL, Token: "t",
				KeepaliveInterval: time.Hour, WriteTimeout: time.Hour, RequestTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			select {
			case <-s.Done():
			case <-time.After(time.Minute):
				t.Fatal("the session outlived a bad frame")
			}
			if _, err := s.Secrets(context.Background()); err == nil {
				t.Fatal("a request succeeded on a broken session")
			}
			if got := <-closed; tc.status != -1 && got != tc.status {
				t.Fatalf("the agent closed with status %v, want %v", got, tc.status)
			}
		})
	}
}
