package spawn

import (
	"fmt"
	"path"
	"strings"
)

// windowsCmd is the Windows command interpreter's usual place, for a
// Windows environment without COMSPEC.
const windowsCmd = `C:\Windows\System32\cmd.exe`

// DefaultShell is the shell for goos given the base environment: $SHELL
// if absolute, else /bin/sh; on Windows %COMSPEC% (cmd.exe), names
// compared without case.
func DefaultShell(goos string, base []string) string {
	if goos == "windows" {
		for i := len(base) - 1; i >= 0; i-- {
			k, v, ok := strings.Cut(base[i], "=")
			if ok && strings.EqualFold(k, "COMSPEC") && isWindowsAbs(v) {
				return v
			}
		}
		return windowsCmd
	}
	if sh := lookup(base, "SHELL"); strings.HasPrefix(sh, "/") {
		return sh
	}
	return "/bin/sh"
}

// ShellArgs is how shell runs command on goos: the arguments after
// argv[0], or, for cmd.exe, the whole command line (cmd.exe does its own
// unquoting, which Windows' argument escaping would break, so os/exec's
// SysProcAttr.CmdLine carries it verbatim).
//
//   - POSIX shells, and bash or sh on Windows: -c COMMAND;
//   - cmd.exe: "SHELL" /d /s /c "COMMAND" (/d skips AutoRun, /s keeps
//     COMMAND's own quotes);
//   - powershell.exe, pwsh: -NoProfile -NonInteractive -Command COMMAND.
//
// cmd.exe runs only the first line of a /c command, so a multi-line
// command is refused with ErrInvalidSpec there rather than cut short:
// chain lines with & or &&, or make PowerShell the agent's shell.
func ShellArgs(goos, shell, command string) (args []string, cmdLine string, err error) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(shell, `\`, "/")))
	if goos == "windows" {
		base = strings.TrimSuffix(base, ".exe")
		switch base {
		case "cmd":
			if strings.ContainsAny(strings.TrimRight(command, "\r\n"), "\r\n") {
				return nil, "", fmt.Errorf("%w: cmd.exe runs only the first line of a multi-line command; "+
					"chain the lines with & or &&, or use PowerShell as the agent's shell", ErrInvalidSpec)
			}
			command = strings.TrimRight(command, "\r\n")
			return []string{"/d", "/s", "/c", command}, `"` + shell + `" /d /s /c "` + command + `"`, nil
		case "powershell", "pwsh":
			return []string{"-NoProfile", "-NonInteractive", "-Command", command}, "", nil
		}
	}
	return []string{"-c", command}, "", nil
}

// isWindowsAbs reports whether p looks like "C:\..." or "C:/...".
func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z')
}
