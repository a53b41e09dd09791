//go:build unix

package tokenenv

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv("TOKENENV_HELPER") == "1" {
		helper()
		return
	}
	goleak.VerifyTestMain(m)
}

const tokenCanary = "TOKEN-CANARY-3f9d1c-never-in-environ"

// report is what the helper process prints.
type report struct {
	PID      int
	Token    string
	Err      string
	Environ  bool // the canary is in /proc/self/environ
	GoEnv    bool // the canary is in os.Environ
	FDVarSet bool
	FDOpen   bool // the pipe's descriptor is still open after Take
}

// helper runs in a child process: it calls Take (which re-executes this
// very test binary once) and reports what the final image sees.
func helper() {
	fdVar := os.Getenv(EnvTokenFD) // set in the re-executed image only
	tok, err := Take()
	rep := report{PID: os.Getpid(), Token: tok}
	if fd, err := strconv.Atoi(fdVar); err == nil && fd > 2 {
		_, ferr := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		rep.FDOpen = ferr == nil
	}
	if err != nil {
		rep.Err = err.Error()
	}
	environ, _ := os.ReadFile("/proc/self/environ")
	rep.Environ = bytes.Contains(environ, []byte(tokenCanary))
	rep.GoEnv = strings.Contains(strings.Join(os.Environ(), "\n"), tokenCanary)
	_, rep.FDVarSet = os.LookupEnv(EnvTokenFD)
	_ = json.NewEncoder(os.Stdout).Encode(rep)
}

func runHelper(t *testing.T, env ...string) (report, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(environWithout(os.Environ(), EnvToken), append([]string{"TOKENENV_HELPER=1"}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, errb.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("helper said %q: %v", out.String(), err)
	}
	return rep, pid
}

func TestTakeDropsTheTokenFromTheExecEnvironment(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/environ")
	}
	rep, pid := runHelper(t, EnvToken+"="+tokenCanary)
	if rep.Token != tokenCanary || rep.Err != "" {
		t.Fatalf("Take = %q, %q", rep.Token, rep.Err)
	}
	if rep.Environ || rep.GoEnv {
		t.Fatalf("the token is still in the environment (kernel copy %t, Go copy %t)", rep.Environ, rep.GoEnv)
	}
	if rep.PID != pid {
		t.Fatalf("re-executed as PID %d, started as %d: not in place", rep.PID, pid)
	}
	if rep.FDVarSet || rep.FDOpen {
		t.Fatalf("the descriptor variable was left set (%t) or the pipe open (%t)", rep.FDVarSet, rep.FDOpen)
	}
}

func TestTakeWithoutToken(t *testing.T) {
	rep, _ := runHelper(t)
	if rep.Token != "" || rep.Err != "" {
		t.Fatalf("Take = %q, %q", rep.Token, rep.Err)
	}
	rep, _ = runHelper(t, EnvToken+"=")
	if rep.Token != "" || rep.Err != "" {
		t.Fatalf("empty token: Take = %q, %q", rep.Token, rep.Err)
	}
}

func TestTakeRefusesABadDescriptor(t *testing.T) {
	for _, fd := range []string{"x", "1", "-4", "987"} {
		rep, _ := runHelper(t, EnvTokenFD+"="+fd, EnvToken+"="+tokenCanary)
		if rep.Token != "" || rep.Err == "" {
			t.Errorf("fd %q: Take = %q, %q; want an error and no token (and no second exec)", fd, rep.Token, rep.Err)
		}
		if strings.Contains(rep.Err, tokenCanary) || rep.GoEnv {
			t.Errorf("fd %q: the token leaked (err %q, Go env %t)", fd, rep.Err, rep.GoEnv)
		}
	}
}

func TestEnvironWithout(t *testing.T) {
	got := environWithout([]string{"A=1", EnvToken + "=t", EnvTokenFD + "=9", "B=x=y"}, EnvToken, EnvTokenFD+"=3")
	if strings.Join(got, " ") != "A=1 B=x=y "+EnvTokenFD+"=3" {
		t.Fatalf("environWithout = %q", got)
	}
}
