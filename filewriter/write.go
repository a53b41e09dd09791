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
	"slices"
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
//     (Once per directory per WriteAll: see batch.)
//  2. Look at the target: a directory fails; a regular file with the same
//     content is left alone (Unchanged); otherwise its mode, owner and group
//     are remembered.
//  3. Create a temporary file in the target's directory, 0600: on Linux
//     (afero.OsFs) an unnamed one (O_TMPFILE), so a process killed while
//     writing leaves nothing behind; else, or where the filesystem cannot,
//     a hidden named one (O_EXCL).
//  4. Write the content.
//  5. Through the open file: chmod it to the kept mode (or 0600: explicit,
//     because of umask). For an existing target, chown it to the target's
//     owner and group, then give it the target's extended attributes
//     (POSIX ACL, SELinux label, user.*; on afero.OsFs, Linux). A call
//     that would change nothing (what a new file in this directory gets by
//     itself, learnt once per WriteAll: see batch.newFile) is skipped. If the
//     process may not do either (an unprivileged agent and a file of
//     another group), the temporary file is removed and the target is
//     written in place (9) instead: its owner, group and attributes are
//     never changed silently. A new file is chowned to Config.UID/GID
//     where the process may.
//  6. Name an unnamed file (linkat), then fsync it: content, attributes
//     and link count reach the disk together, before the rename can
//     expose them. On Windows (afero.OsFs) the DACL is then set
//     by path: the target's kept, or owner-only for a new file.
//  7. Rename it over the target. If the target is a mount point (EBUSY,
//     EXDEV), write the target in place (9) instead.
//  8. Fsync the directory so the rename survives a crash. WriteAll does
//     this once per directory, when the last write into it has ended
//     (lastSyncsDir), which keeps the guarantee — every rename is durable
//     before WriteAll returns — at a fraction of the fsyncs.
//  9. In place: truncate and write the existing file and fsync it, which
//     keeps every attribute it has but lets a reader see a partial file
//     meanwhile; log one warning naming the path and why.
//
// Every failure after (3) removes the temporary file; the target is only
// ever touched by the rename in (7) or the in-place write in (9).
func (w *Writer) write(ctx context.Context, b *batch, p string, content []byte) (out Outcome, inPlace string, err error) {
	fsys := w.cfg.Fs
	dir := path.Dir(p)
	// (1)
	if err := b.mkdirAll(dir); err != nil {
		return Failed, "", err
	}
	// (2)
	mode, uid, gid, haveOwner := os.FileMode(newFileMode), w.cfg.UID, w.cfg.GID, w.cfg.UID >= 0
	fi, err := b.stat(p)
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
	tmp, f, unnamed := "", file(nil), false
	if f, unnamed = w.openUnnamed(dir); !unnamed {
		if tmp, f, err = w.createTemp(dir); err != nil {
			return Failed, "", dirError(dir, err)
		}
	}
	discard := func() {
		_ = f.Close()
		if tmp != "" {
			_ = fsys.Remove(tmp)
		}
	}
	cleanup := func(cause error) (Outcome, string, error) {
		discard()
		return Failed, "", classify(cause)
	}
	// (4)
	if _, err := f.Write(content); err != nil {
		return cleanup(err)
	}
	// (5) What a new file here gets by itself needs no call to set.
	nf, known := b.newFile(dir, f)
	if !known || nf.mode != mode {
		if err := w.chmod(f, tmp, mode); err != nil {
			return cleanup(err)
		}
	}
	owned := known && nf.uid == uid && nf.gid == gid
	switch {
	case exists:
		if why := w.keepAttrs(f, tmp, p, haveOwner && !owned, uid, gid, known && !nf.xattrs); why != "" {
			discard()
			return w.inPlace(p, content, why)
		}
	case haveOwner && !owned:
		// A new file: EPERM is expected when not root, and the file then
		// belongs to the process, which is what a new file should.
		_ = w.chown(f, tmp, uid, gid)
	}
	// (6) An unnamed file is named before the fsync, so that the fsync
	// also makes its link count durable.
	if unnamed {
		if tmp, err = w.linkUnnamed(f, dir); err != nil {
			discard()
			if errors.Is(err, errNoLink) {
				return w.write(ctx, b, p, content) // named from the start now
			}
			return Failed, "", classify(err)
		}
	}
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return Failed, "", classify(err)
	}
	if _, osFs := fsys.(*afero.OsFs); osFs {
		if why, err := windowsACL(tmp, p, exists); err != nil || why != "" {
			_ = fsys.Remove(tmp)
			if err != nil {
				return Failed, "", err
			}
			return w.inPlace(p, content, why)
		}
	}
	// (7)
	if err := w.rename(tmp, p); err != nil {
		_ = fsys.Remove(tmp)
		if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EXDEV) {
			return Failed, "", classify(err)
		}
		return w.inPlace(p, content, fmt.Sprintf("the target is a mount point and cannot be replaced by rename (%v)", errno(err)))
	}
	// (8) in WriteAll (lastSyncsDir)
	return Written, "", nil
}

// chmod sets the mode of the open temporary file f (at tmp).
func (w *Writer) chmod(f file, tmp string, mode fs.FileMode) error {
	if h, ok := f.(handleAttrs); ok {
		return h.Chmod(mode)
	}
	return w.cfg.Fs.Chmod(tmp, mode)
}

// chown sets the owner of the open temporary file f (at tmp).
func (w *Writer) chown(f file, tmp string, uid, gid int) error {
	if h, ok := f.(handleAttrs); ok {
		return h.Chown(uid, gid)
	}
	return w.cfg.Fs.Chown(tmp, uid, gid)
}

// keepAttrs gives the open temporary file f (at tmp) the owner, group and
// extended attributes of the target p: step (5). It returns "" on success,
// else why the replacement would not keep them.
//
// bare says the temporary file is known to have no extended attributes.
func (w *Writer) keepAttrs(f file, tmp, p string, haveOwner bool, uid, gid int, bare bool) string {
	if haveOwner {
		if err := w.chown(f, tmp, uid, gid); err != nil {
			groups, _ := os.Getgroups()
			return chownObstacle(os.Geteuid(), uid, gid, append(groups, os.Getegid()), errno(err))
		}
	}
	if _, ok := w.cfg.Fs.(*afero.OsFs); ok {
		if err := copyXattrs(p, f, bare); err != nil {
			return fmt.Sprintf("uid %d may not give a replacement the existing file's extended attributes (%v)", os.Geteuid(), err)
		}
	}
	return ""
}

// chownObstacle says exactly which of the existing file's owner (uid) and
// group (gid) a replacement made by euid, whose groups are groups, cannot
// keep, and why: only root gives a file to another user, and a user may
// only give a file one of their own groups.
func chownObstacle(euid, uid, gid int, groups []int, err error) string {
	owner := uid != euid && euid != 0
	group := euid != 0 && !slices.Contains(groups, gid)
	switch {
	case owner && group:
		return fmt.Sprintf("the existing file's owner (uid %d) and group (gid %d) cannot be kept: the agent runs as uid %d, which may not give a file to another user, and gid %d is not one of its groups (%v)",
			uid, gid, euid, gid, err)
	case owner:
		return fmt.Sprintf("the existing file's owner (uid %d) cannot be kept: the agent runs as uid %d, which may not give a file to another user (%v)",
			uid, euid, err)
	case group:
		return fmt.Sprintf("the existing file's group (gid %d) cannot be kept: it is not one of the groups of the agent's uid %d (%v)",
			gid, euid, err)
	}
	return fmt.Sprintf("uid %d could not give a replacement the existing file's owner %d and group %d (%v)", euid, uid, gid, err)
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

// mkdirAll creates dir and its missing parents. It returns the info of
// dir if it already existed, else nil.
func (w *Writer) mkdirAll(dir string) (fs.FileInfo, error) {
	fi, err := w.cfg.Fs.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return nil, ErrNotDir
		}
		return fi, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, classify(err)
	}
	if parent := path.Dir(dir); parent != dir {
		if _, err := w.mkdirAll(parent); err != nil {
			return nil, err
		}
	}
	if err := w.cfg.Fs.Mkdir(dir, newDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, classify(err)
	}
	// Explicit, because umask may have narrowed (or a parent's default ACL
	// widened) the mode.
	_ = w.cfg.Fs.Chmod(dir, newDirMode)
	if w.cfg.UID >= 0 {
		_ = w.cfg.Fs.Chown(dir, w.cfg.UID, w.cfg.GID)
	}
	return nil, nil
}

// sameContent reports whether the file p, of the given size, holds content.
func (w *Writer) sameContent(p string, size int64, content []byte) (bool, error) {
	if size != int64(len(content)) {
		return false, nil
	}
	f, err := w.openFile(p, os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	// One byte more than expected tells a file that grew since its stat.
	// A local file's read returns all it has, so one read usually settles
	// it; only a short one needs more.
	got := make([]byte, size+1)
	n, err := f.Read(got)
	if err != nil && err != io.EOF {
		return false, err
	}
	if n < len(content) {
		m, err := io.ReadFull(f, got[n:])
		if err != io.ErrUnexpectedEOF && err != io.EOF {
			return false, err // nil here means the file is longer
		}
		n += m
	}
	return n == len(content) && bytes.Equal(got[:n], content), nil
}

func (w *Writer) createTemp(dir string) (string, file, error) {
	for range 5 {
		name := tempName(dir)
		f, err := w.openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, newFileMode)
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

// tempName returns a fresh random temporary file name in dir.
func tempName(dir string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return path.Join(dir, tempPrefix+hex.EncodeToString(b[:]))
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
