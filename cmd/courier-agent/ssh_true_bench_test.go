//go:build linux

package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/courierhq/courier/client"
)

// BenchmarkSSHTrueVsOpenSSH runs `ssh <host> true` with the OpenSSH client
// twice per op, in alternating order so machine noise hits both: through
// Courier (courier ssh --stdio as ProxyCommand, the control plane's
// websocket, the agent's yamux stream and SSH server) and against OpenSSH's
// own sshd on loopback (a fresh sshd of its own in a temporary directory,
// public-key login, no PAM). It reports each side's time per command and
// their ratio courier/sshd (target ≤ 0.2). Recorded in BENCHMARKS.md.
//
// Like with like: both sides log in the same throwaway user (benchUserName)
// with the same, empty home and the same shell (/bin/bash), and the client
// is pinned to the same key exchange, cipher and host key type on both.
// (Logging sshd into the user running the test compared Courier's empty
// sandbox home against that user's real rc files: Debian's bash reads
// ~/.bashrc for sshd's `bash -c`, so a slow .bashrc made sshd look slow.)
//
//	go test -run '^$' -bench BenchmarkSSHTrueVsOpenSSH -benchtime 20x ./cmd/courier-agent/
//
// It needs root (sshd forks a session per login; the user is created) and
// skips when sshd is missing or when not root.
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
	bu := ensureBenchUser(b)
	dir := benchUserDir(b)
	courier, url, token := benchCourier(b, dir, bu.runAgent)
	common := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"-o", "KexAlgorithms=curve25519-sha256", "-o", "Ciphers=chacha20-poly1305@openssh.com",
		"-o", "HostKeyAlgorithms=ssh-ed25519"}
	viaCourier := func() error {
		cmd := exec.Command(sshBin, append(common, "-o", "ProxyCommand="+courier+" ssh --stdio %h", "dev", "true")...)
		cmd.Env = append(os.Environ(), "COURIER_URL="+url, "COURIER_SESSION_TOKEN="+token, "COURIER_CONFIG_DIR="+dir)
		return runQuiet(cmd)
	}

	sshdDir := filepath.Join(dir, "sshd")
	if err := os.Mkdir(sshdDir, 0o755); err != nil {
		b.Fatal(err)
	}
	hostKey, clientKey := filepath.Join(sshdDir, "host_ed25519"), filepath.Join(b.TempDir(), "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if err := runQuiet(exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", k)); err != nil {
			b.Fatal(err)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	// sshd reads it as the user.
	authorized := filepath.Join(sshdDir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o644); err != nil {
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
PrintMotd no
PrintLastLog no
AllowUsers %s
`, port, hostKey, authorized, filepath.Join(sshdDir, "sshd.pid"), benchUserName)
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
			"-p", port, benchUserName+"@127.0.0.1", "true")...))
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

// benchUserName is the throwaway user both sides of the SSH benchmark log
// in as; benchUserHome is its home, emptied at each run.
const (
	benchUserName = "courier-bench"
	benchUserHome = "/var/lib/courier-bench"
)

// benchUser is the benchmark's user.
type benchUser struct{ uid, gid int }

// ensureBenchUser creates benchUserName (shell /bin/bash, home
// benchUserHome) if missing and gives it a fresh, empty home.
func ensureBenchUser(b *testing.B) benchUser {
	b.Helper()
	if _, err := user.Lookup(benchUserName); err != nil {
		out, err := exec.Command("useradd", "--home-dir", benchUserHome, "--no-create-home", "--shell", "/bin/bash",
			"--user-group", benchUserName).CombinedOutput()
		if err != nil {
			b.Fatalf("useradd: %v\n%s", err, out)
		}
	}
	// No password, but not locked ("!"), which sshd without PAM refuses.
	if out, err := exec.Command("usermod", "--password", "*", benchUserName).CombinedOutput(); err != nil {
		b.Fatalf("usermod: %v\n%s", err, out)
	}
	u, err := user.Lookup(benchUserName)
	if err != nil {
		b.Fatal(err)
	}
	var bu benchUser
	bu.uid, _ = strconv.Atoi(u.Uid)
	bu.gid, _ = strconv.Atoi(u.Gid)
	if u.HomeDir != benchUserHome {
		b.Fatalf("%s's home is %s, want %s", benchUserName, u.HomeDir, benchUserHome)
	}
	_ = os.RemoveAll(benchUserHome)
	for _, err := range []error{os.MkdirAll(benchUserHome, 0o700), os.Chown(benchUserHome, bu.uid, bu.gid)} {
		if err != nil {
			b.Fatal(err)
		}
	}
	return bu
}

// benchUserDir returns a fresh directory, removed when the benchmark ends,
// that the benchmark user may traverse (go test's are 0700): for the
// binaries, the data and sshd's files.
func benchUserDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "courier-sshbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// runAgent makes the agent run as the benchmark user, in its home, with
// the environment a login gives it.
func (u benchUser) runAgent(agent *exec.Cmd, dataDir string) {
	_ = os.MkdirAll(dataDir, 0o700)
	_ = os.Chown(dataDir, u.uid, u.gid)
	agent.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}}
	agent.Dir = benchUserHome
	agent.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + benchUserHome, "USER=" + benchUserName,
		"LOGNAME=" + benchUserName, "SHELL=/bin/bash"}
}

// BenchmarkSSHTrueStages splits one `ssh dev true` through Courier into
// its stages, each timed on its own in the same run, as the same user as
// BenchmarkSSHTrueVsOpenSSH: starting the `courier` process (`courier
// version`, the floor of `courier ssh --stdio`), the websocket to the
// control plane with its authentication and the stream to the agent
// (client.DialSSH), the SSH handshake (x/crypto's client, the same kex and
// cipher), and the session: open, spawn `bash -c true`, exit status.
//
//	go test -run '^$' -bench BenchmarkSSHTrueStages -benchtime 20x ./cmd/courier-agent/
func BenchmarkSSHTrueStages(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to run the agent as the benchmark user")
	}
	bu := ensureBenchUser(b)
	dir := benchUserDir(b)
	courier, url, token := benchCourier(b, dir, bu.runAgent)
	api, err := client.New(client.Config{URL: url, Token: token})
	if err != nil {
		b.Fatal(err)
	}
	cfg := &gossh.ClientConfig{User: benchUserName, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Config:            gossh.Config{KeyExchanges: []string{"curve25519-sha256"}, Ciphers: []string{"chacha20-poly1305@openssh.com"}},
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519}, Timeout: 10 * time.Second}
	ctx := context.Background()
	var spent [4]time.Duration // process, dial, handshake, session
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if err := runQuiet(exec.Command(courier, "version")); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		nc, err := api.DialSSH(ctx, "dev")
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		cc, chans, reqs, err := gossh.NewClientConn(nc, "dev", cfg)
		if err != nil {
			b.Fatal(err)
		}
		c := gossh.NewClient(cc, chans, reqs)
		t3 := time.Now()
		sess, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := sess.Run("true"); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		_ = c.Close()
		for i, d := range []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)} {
			spent[i] += d
		}
		n++
	}
	for i, name := range []string{"process-ms/op", "dial-ms/op", "handshake-ms/op", "session-ms/op"} {
		b.ReportMetric(float64(spent[i].Microseconds())/1000/float64(n), name)
	}
}
