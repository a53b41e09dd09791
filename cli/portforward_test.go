package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTCPForward(t *testing.T) {
	tests := []struct {
		in      string
		want    tcpForward
		wantErr string
	}{
		{in: "8080:3000", want: tcpForward{8080, 3000}},
		{in: "5432", want: tcpForward{5432, 5432}},
		{in: "0:3000", want: tcpForward{0, 3000}},
		{in: "8080:0", wantErr: "workspace port cannot be 0"},
		{in: "", wantErr: "is not a port"},
		{in: "8080:", wantErr: "is not a port"},
		{in: "65536:1", wantErr: "is not a port"},
		{in: "-1:1", wantErr: "is not a port"},
		{in: "127.0.0.1:8080:3000", wantErr: "is not a port"},
		{in: "8080:db:5432", wantErr: "is not a port"},
		{in: "http:80", wantErr: "is not a port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTCPForward(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--tcp") {
					t.Fatalf("parseTCPForward(%q) = %v, %v; want an error about %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTCPForward(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPortForwardNeedsATCPFlag(t *testing.T) {
	err := Execute(t.Context(), []string{"port-forward", "dev"})
	if err == nil || !strings.Contains(err.Error(), "--tcp") {
		t.Fatalf("port-forward without --tcp: %v", err)
	}
}

func TestTemplateSSHSettings(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"t.yaml": "ssh:\n  disable_forwarding: true\n  gateway_ports: true\n",
		"t.json": `{"ssh": {"disable_forwarding": true, "gateway_ports": true}}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		tmpl, err := readTemplate(p)
		if err != nil || !tmpl.SSH.DisableForwarding || !tmpl.SSH.GatewayPorts {
			t.Errorf("%s: %+v, %v", name, tmpl.SSH, err)
		}
	}
	p := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(p, []byte("ssh:\n  disable_fowarding: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTemplate(p); err == nil {
		t.Error("a misspelt ssh setting was accepted")
	}
}
