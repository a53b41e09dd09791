package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// courierBin is the courier binary built once by TestMain; every test runs
// the real thing.
var courierBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "courier-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	courierBin = filepath.Join(dir, "courier")
	build := exec.Command("go", "build", "-o", courierBin, "github.com/courierhq/courier/cmd/courier")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build courier:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// The fakes' servers and the pty readers must all have ended.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// cli runs the binary in an isolated home and config directory.
type cli struct {
	t         *testing.T
	home, cfg string
	env       []string
}

func newCLI(t *testing.T, url string) *cli {
	t.Helper()
	home := t.TempDir()
	c := &cli{t: t, home: home, cfg: filepath.Join(home, "cfg")}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "COURIER_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		c.env = append(c.env, kv)
	}
	c.env = append(c.env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "COURIER_CONFIG_DIR="+c.cfg)
	if url != "" {
		c.env = append(c.env, "COURIER_URL="+url)
	}
	return c
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) all() string { return r.stdout + r.stderr }

// run executes courier with args; stdin nil means /dev/null, otherwise a pipe
// carrying *stdin.
func (c *cli) run(stdin *string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, courierBin, args...)
	cmd.Env = c.env
	if stdin != nil {
		cmd.Stdin = strings.NewReader(*stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		c.t.Fatalf("run courier %v: %v", args, err)
	}
	return res
}

// ok runs and fails the test on a non-zero exit.
func (c *cli) ok(stdin *string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("courier %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func str(s string) *string { return &s }
