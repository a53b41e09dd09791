package filewriter

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/spf13/afero"
)

// maxLinkHops bounds symlink resolution, as the kernel's ELOOP limit does.
const maxLinkHops = 40

// followLinks resolves symlinks in the existing components of the clean
// absolute path p, from the root down. Components that do not exist yet are
// kept as written. On an Fs without symlink support (no afero.Lstater and
// afero.LinkReader, or Lstat reporting it was not used) p is returned as is.
func (w *Writer) followLinks(p string) (string, error) {
	lst, ok1 := w.cfg.Fs.(afero.Lstater)
	rd, ok2 := w.cfg.Fs.(afero.LinkReader)
	if !ok1 || !ok2 {
		return p, nil
	}
	root, rest := w.paths.split(p)
	resolved := root
	for hops := 0; len(rest) > 0; {
		next := path.Join(resolved, rest[0])
		rest = rest[1:]
		fi, usedLstat, err := lst.LstatIfPossible(next)
		if errors.Is(err, fs.ErrNotExist) {
			// Nothing below a missing component can be a link yet.
			return path.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			// Permission problems and the like surface at write time with a
			// better message; resolve as written.
			return path.Join(append([]string{next}, rest...)...), nil
		}
		if !usedLstat || fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return "", fmt.Errorf("%w: %s", ErrSymlinkLoop, p)
		}
		target, err := rd.ReadlinkIfPossible(next)
		if err != nil {
			return "", fmt.Errorf("reading symlink %s: %w", next, err)
		}
		target = toSlash(target)
		switch {
		case w.paths.windows && isWindowsAbs(target):
		case w.paths.windows && strings.HasPrefix(target, "/"):
			target = root + target[1:] // a rooted link stays on its volume
		case !strings.HasPrefix(target, "/"):
			target = path.Join(resolved, target)
		}
		// Restart from the root with the link's target spliced in.
		var parts []string
		root, parts = w.paths.split(path.Clean(target))
		rest = append(parts, rest...)
		resolved = root
	}
	return resolved, nil
}

func toSlash(p string) string { return strings.ReplaceAll(p, "\\", "/") }

// isWindowsAbs reports whether p looks like "C:\..." or "C:/...".
func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z')
}
