package filewriter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// Modes of what the writer creates.
const (
	newFileMode = 0o600
	newDirMode  = 0o700
)

// tempPrefix marks the writer's temporary files; they are hidden and easy to
// recognise if a crash leaves one behind.
const tempPrefix = ".courier-tmp-"

// write puts content at the resolved absolute path p. It returns, for a
// file written in place rather than replaced, why (see Result.InPlace).
//
//  1. Create missing parents with mode 0700; a parent that is a file fails.
//  2. Look at the target: a directory fails; a regular file with the same
//     content is left alone (Unchanged); otherwise its mode, owner and group
//     are remembered.
//  3. Create a temporary file in the target's directory (O_EXCL, 0600).
//  4. Write the content and fsync it.
//  5. Chmod it to the kept mode (or 0600: explicit, because of umask; on
//     Windows, with afero.OsFs, a new file gets an owner-only DACL). For
//     an existing target, chown it to the target's owner and group, then
//     give it the target's extended attributes (POSIX ACL, SELinux label,
//     user.*; on afero.OsFs, Linux) or, on Windows, its DACL. If the process may not do either (an
//     unprivileged agent and a file of another group), the temporary file
//     is removed and the target is written in place (8) instead: its
//     owner, group and attributes are never changed silently. A new file is
//     chowned to Config.UID/GID where the process may.
//  6. Rename it over the target. If the target is a mount point (EBUSY,
//     EXDEV), write the target in place (8) instead.
//  7. Fsync the directory so the rename survives a crash. WriteAll does
//     this once per directory after all renames into it (syncDirs), which
//     keeps the guarantee — every rename is durable before WriteAll
//     returns — at a fraction of the fsyncs.
//  8. In place: truncate and write the existing file and fsync it, which
//     keeps every attribute it has but lets a reader see a partial file
//     meanwhile; log one warning naming the path and why.
//
// Every failure after (3) removes the temporary file; the target is only
// ever touched by the rename in (6) or the in-place write in (8).
func (w *Writer) write(ctx context.Context, p string, content []byte) (out Outcome, inPlace string, err error) {
	fsys := w.cfg.Fs
	dir := path.Dir(p)
	// (1)
	if err := w.mkdirAll(dir); err != nil {
		return Failed, "", err
	}
	// (2)
	mode, uid, gid, haveOwner := os.FileMode(newFileMode), w.cfg.UID, w.cfg.GID, w.cfg.UID >= 0
	fi, err := fsys.Stat(p)
	exists := err == nil
	switch {
	case exists && fi.IsDir():
		return Failed, "", ErrIsDir
	case exists:
		mode, haveOwner = fi.Mode().Perm(), false
		if u, g, ok := owner(fi); ok {
			uid, gid, haveOwner = u, g, true
		}
		if same, err := w.sameContent(p, fi.Size(), content); err == nil && same {
			return Unchanged, "", nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return Failed, "", classify(err)
	}
	if err := ctx.Err(); err != nil {
		return Failed, "", err
	}
	// (3)
	tmp, f, err := w.createTemp(dir)
	if err != nil {
		return Failed, "", dirError(dir, err)
	}
	cleanup := func(cause error) (Outcome, string, error) {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return Failed, "", classify(cause)
	}
	// (4)
	if _, err := f.Write(content); err != nil {
		return cleanup(err)
	}
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return Failed, "", classify(err)
	}
	// (5)
	if err := fsys.Chmod(tmp, mode); err != nil {
		_ = fsys.Remove(tmp)
		return Failed, "", classify(err)
	}
	if _, osFs := fsys.(*afero.OsFs); osFs && !exists {
		// Windows: an owner-only ACL, as mode bits mean little there.
		if err := restrictNew(tmp); err != nil {
			_ = fsys.Remove(tmp)
			return Failed, "", err
		}
	}
	switch {
	case exists:
		if why := w.keepAttrs(tmp, p, haveOwner, uid, gid); why != "" {
			_ = fsys.Remove(tmp)
			return w.inPlace(p, content, why)
		}
	case haveOwner:
		// A new file: EPERM is expected when not root, and the file then
		// belongs to the process, which is what a new file should.
		_ = fsys.Chown(tmp, uid, gid)
	}
	// (6)
	if err := fsys.Rename(tmp, p); err != nil {
		_ = fsys.Remove(tmp)
		if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EXDEV) {
			return Failed, "", classify(err)
		}
		return w.inPlace(p, content, fmt.Sprintf("the target is a mount point and cannot be replaced by rename (%v)", errno(err)))
	}
	// (7) in syncDirs
	return Written, "", nil
}

// keepAttrs gives the temporary file tmp the owner, group and extended
// attributes of the target p: step (5). It returns "" on success, else why
// the replacement would not keep them.
func (w *Writer) keepAttrs(tmp, p string, haveOwner bool, uid, gid int) string {
	if haveOwner {
		if err := w.cfg.Fs.Chown(tmp, uid, gid); err != nil {
			return fmt.Sprintf("uid %d may not chown a replacement to the existing file's owner %d and group %d (%v)",
				os.Geteuid(), uid, gid, errno(err))
		}
	}
	if _, ok := w.cfg.Fs.(*afero.OsFs); ok {
		if err := copyXattrs(p, tmp); err != nil {
			return fmt.Sprintf("uid %d may not give a replacement the existing file's extended attributes (%v)", os.Geteuid(), err)
		}
	}
	return ""
}

// inPlace is step (8): it rewrites the existing file p, keeping everything
// but its content, and warns once. why is the reason a rename was not used.
func (w *Writer) inPlace(p string, content []byte, why string) (Outcome, string, error) {
	if err := w.writeInPlace(p, content); err != nil {
		return Failed, "", fmt.Errorf("%s, and writing it in place failed: %w", why, classify(err))
	}
	w.log.Warn("file written in place, not replaced atomically",
		zap.String("path", p), zap.String("reason", why))
	return Written, why, nil
}

func (w *Writer) mkdirAll(dir string) error {
	fi, err := w.cfg.Fs.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return ErrNotDir
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return classify(err)
	}
	if parent := path.Dir(dir); parent != dir {
		if err := w.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := w.cfg.Fs.Mkdir(dir, newDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return classify(err)
	}
	// Explicit, because umask may have narrowed (or a parent's default ACL
	// widened) the mode.
	_ = w.cfg.Fs.Chmod(dir, newDirMode)
	if w.cfg.UID >= 0 {
		_ = w.cfg.Fs.Chown(dir, w.cfg.UID, w.cfg.GID)
	}
	return nil
}

func (w *Writer) sameContent(p string, size int64, content []byte) (bool, error) {
	if size != int64(len(content)) {
		return false, nil
	}
	f, err := w.cfg.Fs.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	got, err := io.ReadAll(io.LimitReader(f, size+1))
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, content), nil
}

func (w *Writer) createTemp(dir string) (string, afero.File, error) {
	var b [8]byte
	for range 5 {
		_, _ = rand.Read(b[:])
		name := path.Join(dir, tempPrefix+hex.EncodeToString(b[:]))
		f, err := w.cfg.Fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, newFileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return name, f, nil
	}
	return "", nil, fmt.Errorf("could not create a temporary file in %s", dir)
}

func (w *Writer) writeInPlace(p string, content []byte) error {
	f, err := w.cfg.Fs.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory. Filesystems that cannot (some network and
// in-memory ones) return an error that is ignored: the data itself was
// synced, and the rename will be durable at the next checkpoint.
func (w *Writer) syncDir(dir string) {
	d, err := w.cfg.Fs.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// dirError explains a failure to create a file in dir; for a permission
// error it names the directory and who was refused, the usual cause being an
// agent running as a user who may not write there.
func dirError(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("directory %s is not writable by uid %d, the agent's user: %w", dir, os.Geteuid(), errno(err))
	}
	return classify(err)
}

// errno returns the system error inside a *PathError or *LinkError, so a
// message names the target, not the temporary file.
func errno(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

// classify adds the package's sentinels to common OS errors so callers can
// branch with errors.Is.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %w", ErrNotDir, err)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: %w", ErrIsDir, err)
	}
	return err
}
