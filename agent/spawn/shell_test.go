package spawn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/courierhq/courier/envmerge"
)

func TestDefaultShell(t *testing.T) {
	for _, tt := range []struct {
		name, goos string
		base       []string
		want       string
	}{
		{"linux SHELL", "linux", []string{"SHELL=/bin/zsh"}, "/bin/zsh"},
		{"linux relative SHELL", "linux", []string{"SHELL=zsh"}, "/bin/sh"},
		{"linux none", "linux", nil, "/bin/sh"},
		{"windows ComSpec any case", "windows", []string{"SHELL=/bin/bash", `ComSpec=D:\Win\system32\cmd.exe`}, `D:\Win\system32\cmd.exe`},
		{"windows relative COMSPEC", "windows", []string{"COMSPEC=cmd.exe"}, windowsCmd},
		{"windows none", "windows", nil, windowsCmd},
	} {
		if got := DefaultShell(tt.goos, tt.base); got != tt.want {
			t.Errorf("%s: DefaultShell = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestShellArgs(t *testing.T) {
	for _, tt := range []struct {
		name, goos, shell string
		args              []string
		line              string
	}{
		{"posix", "linux", "/bin/bash", []string{"-c", `echo "a b"`}, ""},
		{"cmd", "windows", `C:\Windows\System32\CMD.EXE`, []string{"/d", "/s", "/c", `echo "a b"`},
			`"C:\Windows\System32\CMD.EXE" /d /s /c "echo "a b""`},
		{"powershell", "windows", `C:\ps\powershell.exe`, []string{"-NoProfile", "-NonInteractive", "-Command", `echo "a b"`}, ""},
		{"pwsh", "windows", `C:\ps\pwsh.exe`, []string{"-NoProfile", "-NonInteractive", "-Command", `echo "a b"`}, ""},
		{"git bash on windows", "windows", `C:\Git\bin\bash.exe`, []string{"-c", `echo "a b"`}, ""},
		{"cmd named on linux", "linux", "/usr/bin/cmd", []string{"-c", `echo "a b"`}, ""},
	} {
		args, line, err := ShellArgs(tt.goos, tt.shell, `echo "a b"`)
		if err != nil || !slices.Equal(args, tt.args) || line != tt.line {
			t.Errorf("%s: ShellArgs = %q, %q, %v; want %q, %q", tt.name, args, line, err, tt.args, tt.line)
		}
	}
}

func TestShellArgsCmdMultiLine(t *testing.T) {
	cmd := `C:\Windows\System32\cmd.exe`
	if _, _, err := ShellArgs("windows", cmd, "echo a\r\necho b"); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "first line") {
		t.Errorf("multi-line under cmd.exe: %v, want ErrInvalidSpec naming the first-line rule", err)
	}
	// A trailing newline is not a second line.
	if _, line, err := ShellArgs("windows", cmd, "echo a\r\n"); err != nil || line != `"`+cmd+`" /d /s /c "echo a"` {
		t.Errorf("trailing newline: %q, %v", line, err)
	}
	// PowerShell and POSIX shells take many lines.
	for _, sh := range []struct{ goos, shell string }{{"windows", `C:\ps\pwsh.exe`}, {"linux", "/bin/sh"}} {
		if _, _, err := ShellArgs(sh.goos, sh.shell, "echo a\necho b"); err != nil {
			t.Errorf("%s: %v", sh.shell, err)
		}
	}
}

// Over the Windows block limit, a spawn fails with an error naming the
// secret that did not fit, and the apply logs it once; values never show.
func TestBlockLimitRefusesSpawn(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	opts := envmerge.OptionsFor("windows")
	opts.BlockLimit = 200
	sp, err := New(Config{Base: []string{"A=b"}, Env: opts, Shell: "/bin/sh", Home: "/", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	canary := "canary-block-" + strings.Repeat("x", 300)
	sp.Update(nil, map[string]string{"BIG_SECRET": canary})
	_, err = sp.Command(context.Background(), Spec{Command: "true"})
	if !errors.Is(err, ErrEnv) || !errors.Is(err, envmerge.ErrBlockTooLarge) || !strings.Contains(err.Error(), "BIG_SECRET") {
		t.Fatalf("Command = %v, want ErrEnv and ErrBlockTooLarge naming BIG_SECRET", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Error("the error holds the value")
	}
	found := 0
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, canary) {
			t.Errorf("log leaks the value: %s", line)
		}
		if strings.Contains(line, "does not fit") && strings.Contains(line, "BIG_SECRET") {
			found++
		}
	}
	if found != 1 {
		t.Errorf("%d apply-time log lines naming BIG_SECRET, want 1", found)
	}
}
