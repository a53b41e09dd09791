package filewriter

import (
	"errors"
	"io/fs"
	"path"
	"sync"

	"github.com/spf13/afero"
)

// batch holds, for one WriteAll call, what every file of a directory would
// otherwise look up again: where the directory resolves to, and whether it
// exists or was created. Fifty secrets in five directories then cost five
// walks of the home's symlinks and five mkdir checks, not fifty. A batch
// lives for one call only, so a change on disk between calls is always
// seen; within a call the result is what it would be had each file been
// looked up on its own at the moment its directory first was.
type batch struct {
	w *Writer
	// resolved maps a directory, as written, to where it resolves, and
	// looked what resolve learnt of each resolved file that is not a
	// link (its lstat is then its stat). Only the serial resolve step of
	// WriteAll writes them, before any write starts.
	resolved map[string]string
	looked   map[string]lookup

	mu    sync.Mutex
	mkdir map[string]*dirOnce
}

type dirOnce struct {
	once sync.Once
	err  error

	// fresh is what a file this process creates in the directory gets by
	// itself, once a write has looked (see newFile).
	mu    sync.Mutex
	known bool
	fresh newFile
}

// newFile is what a file the process creates in a directory gets without
// being asked: its owner and group (the process's user; its group or the
// directory's, by set-group-ID, a grpid mount or an NFS mapping), its
// permission bits (0600 through the umask or a default ACL) and whether it
// has extended attributes (an inherited ACL, a security label).
type newFile struct {
	uid, gid int
	mode     fs.FileMode
	xattrs   bool
}

// lookup is one stat of a file: its info, or why there is none.
type lookup struct {
	fi  fs.FileInfo
	err error
}

func newBatch(w *Writer) *batch {
	return &batch{w: w, resolved: map[string]string{}, looked: map[string]lookup{}, mkdir: map[string]*dirOnce{}}
}

// stat is the target's Stat, from what resolve saw when it can be reused.
func (b *batch) stat(p string) (fs.FileInfo, error) {
	if l, ok := b.looked[p]; ok {
		return l.fi, l.err
	}
	return b.w.cfg.Fs.Stat(p)
}

// resolve is Writer.Resolve with the parent directory's resolution shared
// by the files in it. The file's own last component is still looked at
// each time: a symlink there is followed as Resolve would.
func (b *batch) resolve(p string) (string, error) {
	w := b.w
	e, err := w.paths.expand(p)
	if err != nil {
		return "", err
	}
	dir, base := path.Dir(e), path.Base(e)
	if _, rest := w.paths.split(dir); len(rest) == 0 {
		return w.followLinks(e) // a file in a root: nothing worth sharing
	}
	lst, ok := w.cfg.Fs.(afero.Lstater)
	if !ok {
		return w.followLinks(e)
	}
	rd, ok := b.resolved[dir]
	if !ok {
		if rd, err = w.followLinks(dir); err != nil {
			// Resolve the whole path for an error that names it.
			return w.followLinks(e)
		}
		b.resolved[dir] = rd
	}
	next := path.Join(rd, base)
	fi, usedLstat, err := lst.LstatIfPossible(next)
	switch {
	case errors.Is(err, fs.ErrNotExist) && usedLstat:
		b.looked[next] = lookup{err: err}
		return next, nil
	case err != nil || !usedLstat:
		// Unreadable (reported at write time): as followLinks leaves it.
		return next, nil
	case fi.Mode()&fs.ModeSymlink == 0:
		b.looked[next] = lookup{fi: fi}
		return next, nil
	}
	return w.followLinks(next)
}

// mkdirAll is Writer.mkdirAll run once per directory per batch; the files
// of a directory share its result.
func (b *batch) mkdirAll(dir string) error {
	b.mu.Lock()
	d, ok := b.mkdir[dir]
	if !ok {
		d = &dirOnce{}
		b.mkdir[dir] = d
	}
	b.mu.Unlock()
	d.once.Do(func() {
		var existed fs.FileInfo
		if existed, d.err = b.w.mkdirAll(dir); existed != nil {
			b.w.sweepOnce(dir)
		}
	})
	return d.err
}

// dir returns dir's entry (mkdirAll made it).
func (b *batch) dir(dir string) *dirOnce {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mkdir[dir]
}

// newFile returns what a new file in dir gets (see newFile), learnt from
// the new file f when no write of this batch has looked yet, and trusted
// for the directory's other files: a chmod, chown or xattr listing it shows
// to be a no-op is then skipped. ok is false where it cannot be known.
func (b *batch) newFile(dir string, f file) (nf newFile, ok bool) {
	d := b.dir(dir)
	if d == nil {
		return newFile{}, false
	}
	d.mu.Lock()
	nf, ok = d.fresh, d.known
	d.mu.Unlock()
	if ok {
		return nf, true
	}
	if nf, ok = probeNew(f); ok {
		d.mu.Lock()
		d.fresh, d.known = nf, true
		d.mu.Unlock()
	}
	return nf, ok
}
