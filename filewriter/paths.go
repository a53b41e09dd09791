package filewriter

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// pathRules are the path rules of one OS: POSIX, or Windows with its
// drives, backslashes and case-insensitive names. They are pure, so the
// Windows rules are tested on every OS.
type pathRules struct {
	windows bool
	home    string // slash form, cleaned
	root    string // "/" or "C:/": what "/x" is under
}

func newPathRules(cfg Config) pathRules {
	if cfg.OS != "windows" {
		return pathRules{home: path.Clean(cfg.Home), root: "/"}
	}
	return pathRules{windows: true, home: path.Clean(toSlash(cfg.Home)), root: strings.ToUpper(cfg.Drive[:1]) + ":/"}
}

// expand is Resolve without the symlinks: the target made absolute and
// clean, or ErrPath.
func (r pathRules) expand(p string) (string, error) {
	if r.windows && strings.HasPrefix(p, "~/") || strings.HasPrefix(p, "/") {
		if err := r.windowsNames(p[strings.IndexByte(p, '/'):]); err != nil {
			return "", err
		}
	}
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty", ErrPath)
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%w: contains a NUL byte", ErrPath)
	case strings.HasPrefix(p, "~/"):
		p = r.home + "/" + p[2:]
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("%w: only \"~/\" is expanded, not \"~user/\"", ErrPath)
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w: must start with \"~/\" or \"/\"", ErrPath)
	case r.windows:
		p = r.root + p[1:]
	}
	if r.windows {
		// Clean below the volume, so ".." stops at the drive's root.
		p = toSlash(p)
		p = p[:2] + path.Clean(p[2:])
	} else {
		p = path.Clean(p)
	}
	if p == r.root || p == path.Clean(r.root) || r.key(p) == r.key(r.home) {
		return "", fmt.Errorf("%w: names a directory", ErrPath)
	}
	return p, nil
}

// key is what two paths naming one file share: the path itself, or on
// Windows (case-insensitive names) its lower case.
func (r pathRules) key(p string) string {
	if r.windows {
		return strings.ToLower(p)
	}
	return p
}

// split returns p's root and its components below it.
func (r pathRules) split(p string) (root string, parts []string) {
	root = "/"
	if r.windows && isWindowsAbs(p) {
		root = strings.ToUpper(p[:1]) + ":/"
	}
	rest := strings.Trim(p[len(root)-1:], "/")
	if rest == "" {
		return root, nil
	}
	return root, strings.Split(rest, "/")
}

// windowsDevices are names Windows maps to devices in every directory.
var windowsDevices = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true}

func init() {
	for _, d := range "123456789" {
		windowsDevices["COM"+string(d)] = true
		windowsDevices["LPT"+string(d)] = true
	}
}

// windowsNames refuses, in a target below its "~/" or "/", what Windows
// would read as something other than a file name. Elsewhere it accepts all.
func (r pathRules) windowsNames(p string) error {
	if !r.windows {
		return nil
	}
	for _, c := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		switch {
		case strings.ContainsAny(c, ":*?\"<>|"):
			return fmt.Errorf("%w: %q holds a character Windows does not allow in a name (':' would name a drive or a data stream)", ErrPath, c)
		case c != "." && c != ".." && (strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ")):
			return fmt.Errorf("%w: %q ends in '.' or ' ', which Windows strips", ErrPath, c)
		}
		base, _, _ := strings.Cut(c, ".")
		if windowsDevices[strings.ToUpper(strings.TrimRight(base, " "))] {
			return fmt.Errorf("%w: %q is a Windows device name", ErrPath, c)
		}
	}
	return nil
}

// defaultDrive is the volume of the working directory, else Home's, else C:.
func defaultDrive(home string) string {
	if wd, err := os.Getwd(); err == nil && isDrive(filepath.VolumeName(wd)) {
		return filepath.VolumeName(wd)
	}
	if isWindowsAbs(home) {
		return home[:2]
	}
	return "C:"
}

// isDrive reports whether d is a drive volume such as "C:".
func isDrive(d string) bool {
	return len(d) == 2 && d[1] == ':' && (d[0]|0x20 >= 'a' && d[0]|0x20 <= 'z')
}
