package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestSSHPeerRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   SSHPeer
		want SSHPeer
	}{
		{"v4", SSHPeer{"203.0.113.7:51234", "10.0.0.5:8080"}, SSHPeer{"203.0.113.7:51234", "10.0.0.5:8080"}},
		{"v6", SSHPeer{"[2001:db8::1]:22", "[::1]:443"}, SSHPeer{"[2001:db8::1]:22", "[::1]:443"}},
		{"empty", SSHPeer{}, SSHPeer{}},
		{"shell injection", SSHPeer{"1.2.3.4:1; rm -rf ~", "$(id):80"}, SSHPeer{}},
		{"hostname", SSHPeer{"evil.example:22", "localhost:80"}, SSHPeer{}},
		{"no port", SSHPeer{"1.2.3.4", "1.2.3.4:"}, SSHPeer{}},
		{"newline", SSHPeer{"1.2.3.4:22\nX=1", ""}, SSHPeer{}},
		{"huge", SSHPeer{strings.Repeat("9", 4000), ""}, SSHPeer{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteSSHPeer(&b, c.in); err != nil {
				t.Fatal(err)
			}
			b.WriteString("SSH-2.0-rest")
			got, err := ReadSSHPeer(&b)
			if err != nil || got != c.want {
				t.Fatalf("ReadSSHPeer = %+v, %v; want %+v", got, err, c.want)
			}
			if b.String() != "SSH-2.0-rest" {
				t.Fatalf("the header consumed %q of what follows", b.String())
			}
		})
	}
}

func TestReadSSHPeerRefusesBadHeaders(t *testing.T) {
	long := make([]byte, 2)
	binary.BigEndian.PutUint16(long, MaxSSHPeerBytes+1)
	for name, in := range map[string][]byte{
		"empty":     nil,
		"short len": {0},
		"too long":  append(long, bytes.Repeat([]byte("x"), MaxSSHPeerBytes+1)...),
		"truncated": {0, 10, '{'},
		"not json":  {0, 3, 'a', 'b', 'c'},
	} {
		if _, err := ReadSSHPeer(bytes.NewReader(in)); !errors.Is(err, ErrBadSSHPeer) {
			t.Errorf("%s: err = %v, want ErrBadSSHPeer", name, err)
		}
	}
	if !HasFeature("x, ssh-peer", FeatureSSHPeer) || HasFeature("ssh-peers", FeatureSSHPeer) || HasFeature("", FeatureSSHPeer) {
		t.Error("HasFeature")
	}
}
