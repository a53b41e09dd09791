package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSSHTrueVsOpenSSH runs `ssh <host> true` with the OpenSSH client
// twice per op, in alternating order so machine noise hits both: through
// Courier (courier ssh --stdio as ProxyCommand, the control plane's
// websocket, the agent's yamux stream and SSH server) and against OpenSSH's
// own sshd on loopback (a fresh sshd of its own in a temporary directory,
// public-key login, no PAM). It reports each side's time per command and
// their ratio courier/sshd (issue 13: stay ≤ 0.2). Recorded in BENCHMARKS.md.
//
//	go test -run '^$' -bench BenchmarkSSHTrueVsOpenSSH -benchtime 20x ./cmd/courier-agent/
//
// sshd must run as root (it forks a session per login); the benchmark
// skips when it is missing or when not root.
func BenchmarkSSHTrueVsOpenSSH(b *testing.B) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		b.Skip("ssh not installed")
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		b.Skip("ssh-keygen not installed")
	}
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
		if _, err := os.Stat(sshd); err != nil {
			b.Skip("sshd not installed (apt-get install -y openssh-server)")
		}
	}
	if os.Geteuid() != 0 {
		b.Skip("sshd needs root to log a user in")
	}
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}

	dir := b.TempDir()
	courier, url, token := benchCourier(b, dir)
	common := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}
	viaCourier := func() error {
		cmd := exec.Command(sshBin, append(common, "-o", "ProxyCommand="+courier+" ssh --stdio %h", "dev", "true")...)
		cmd.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+dir)
		return runQuiet(cmd)
	}

	sshdDir := b.TempDir()
	hostKey, clientKey := filepath.Join(sshdDir, "host_ed25519"), filepath.Join(sshdDir, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if err := runQuiet(exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", k)); err != nil {
			b.Fatal(err)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	authorized := filepath.Join(sshdDir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		b.Fatal(err)
	}
	// The privilege separation directory is made by the distribution's
	// service unit, which is not running here.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		b.Fatal(err)
	}
	port := benchPort(b)
	config := filepath.Join(sshdDir, "sshd_config")
	conf := fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s
`, port, hostKey, authorized, filepath.Join(sshdDir, "sshd.pid"), me.Username)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	sshdLog := filepath.Join(sshdDir, "sshd.log")
	daemon := exec.Command(sshd, "-D", "-f", config, "-E", sshdLog)
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })
	viaSSHD := func() error {
		return runQuiet(exec.Command(sshBin, append(common, "-o", "IdentitiesOnly=yes", "-i", clientKey,
			"-p", port, me.Username+"@127.0.0.1", "true")...))
	}

	benchWait(b, func() bool { return viaCourier() == nil })
	deadline := time.Now().Add(20 * time.Second)
	for err := viaSSHD(); err != nil; err = viaSSHD() {
		if time.Now().After(deadline) {
			b.Fatalf("sshd: %v\n%s", err, read(sshdLog))
		}
		time.Sleep(50 * time.Millisecond)
	}

	var spent [2]time.Duration // courier, sshd
	runs := []func() error{viaCourier, viaSSHD}
	i := 0
	for b.Loop() {
		for k := range 2 {
			side := (i + k) % 2
			start := time.Now()
			if err := runs[side](); err != nil {
				b.Fatalf("side %d: %v", side, err)
			}
			spent[side] += time.Since(start)
		}
		i++
	}
	courierMS := float64(spent[0].Microseconds()) / 1000 / float64(i)
	sshdMS := float64(spent[1].Microseconds()) / 1000 / float64(i)
	b.ReportMetric(courierMS, "courier-ms/op")
	b.ReportMetric(sshdMS, "sshd-ms/op")
	b.ReportMetric(courierMS/sshdMS, "ratio")
}

// runQuiet runs cmd and returns its error with its combined output.
func runQuiet(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %v\n%s", cmd.Args[0], err, out)
	}
	return nil
}
