// Package filewriter writes file secrets onto an afero.Fs: it expands "~/",
// settles collisions between secrets that resolve to the same file, creates
// missing parents, and replaces file contents atomically while keeping the
// existing file's mode, owner, group, POSIX ACL and extended attributes (R6)
// — or on Windows its DACL. It never deletes a file (R7).
package filewriter

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

var (
	// ErrConfig is wrapped by Config.Validate failures.
	ErrConfig = errors.New("invalid filewriter config")
	// ErrPath is wrapped when a target path is not "~/..." or "/...", or
	// is empty, or holds a NUL byte.
	ErrPath = errors.New("invalid file path")
	// ErrIsDir is wrapped when a directory stands where the file should be.
	ErrIsDir = errors.New("a directory is in the way")
	// ErrNotDir is wrapped when a parent of the target is not a directory.
	ErrNotDir = errors.New("a parent is not a directory")
	// ErrSymlinkLoop is wrapped when resolving symlinks takes too many hops.
	ErrSymlinkLoop = errors.New("too many levels of symbolic links")
	// ErrProtected is wrapped when a target resolves to a path of
	// Config.Protected, or into one: a file the writer's own program needs.
	ErrProtected = errors.New("refused: the agent keeps its own files there")
	// ErrOutside is wrapped when Config.Confine is set and a target
	// resolves outside it.
	ErrOutside = errors.New("refused: outside the directory file secrets are confined to")
)

// Outcome is what happened to one file.
type Outcome string

// Outcomes of a write.
const (
	// Written: the file now holds the content.
	Written Outcome = "written"
	// Unchanged: the file already held the content; nothing was written.
	Unchanged Outcome = "unchanged"
	// LostCollision: another secret resolving to the same path won.
	LostCollision Outcome = "lost_collision"
	// Failed: Result.Err says why; the file on disk is as it was.
	Failed Outcome = "failed"
)

// Config configures a Writer.
type Config struct {
	// Fs is the filesystem written to. Default afero.NewOsFs().
	Fs afero.Fs
	// Home is what "~/" expands to. Required, absolute.
	Home string
	// Logger receives collision and in-place-write warnings. Default nop.
	Logger *zap.Logger
	// Parallelism bounds concurrent writes in WriteAll. Default 16: fsync
	// latency, not CPU, bounds a write, so more writes than cores overlap well.
	Parallelism int
	// UID and GID own new files and directories when >= 0 and the process
	// may chown. Default -1, -1: new files belong to the process.
	UID, GID int
	// OS selects the path rules: "windows" or any other GOOS (POSIX).
	// Default runtime.GOOS. It is a field so the Windows rules are
	// testable on Linux (see Resolve).
	OS string
	// Drive is, on Windows, the volume "/x/y" paths resolve onto ("C:").
	// Default the volume of the agent's working directory, else Home's.
	Drive string
	// Protected are absolute paths never written to, nor anything under
	// them: what the program itself reads and writes (its token file, its
	// data directory). A target that resolves there, after symlinks, fails
	// with ErrProtected; a secret must not lock the agent out or corrupt
	// its state. Default none.
	Protected []string
	// Confine, when set, is an absolute directory every target must
	// resolve into (after symlinks); others fail with ErrOutside. For a
	// sandbox such as `courier dev`, whose absolute paths and "~/.." must
	// not reach the developer's own files. Default "": anywhere.
	Confine string
}

// DefaultConfig returns a Config with every default filled but Home.
func DefaultConfig() Config {
	return Config{Fs: afero.NewOsFs(), Logger: zap.NewNop(), Parallelism: 16, UID: -1, GID: -1}
}

// Validate reports whether c is usable. Zero Fs, Logger and Parallelism are
// defaults, not errors.
func (c Config) Validate() error {
	switch {
	case c.Home == "" || !strings.HasPrefix(c.Home, "/") && !isWindowsAbs(c.Home):
		return fmt.Errorf("%w: Home must be an absolute path, got %q", ErrConfig, c.Home)
	case c.Parallelism < 0:
		return fmt.Errorf("%w: Parallelism is negative", ErrConfig)
	case c.OS == "windows" && !isWindowsAbs(c.Home):
		return fmt.Errorf("%w: Home must be a Windows path such as C:\\Users\\me, got %q", ErrConfig, c.Home)
	case c.OS == "windows" && c.Drive != "" && !isDrive(c.Drive):
		return fmt.Errorf("%w: Drive must be a volume such as \"C:\", got %q", ErrConfig, c.Drive)
	}
	for _, p := range append(slices.Clone(c.Protected), c.Confine) {
		if p != "" && !strings.HasPrefix(toSlash(p), "/") && !isWindowsAbs(p) {
			return fmt.Errorf("%w: protected and confining paths must be absolute, got %q", ErrConfig, p)
		}
	}
	return nil
}

// File is one file secret to write. Content is the secret's value: it is
// never logged and never appears in an error.
type File struct {
	Secret    string
	Path      string
	Content   []byte
	UpdatedAt time.Time
}

// String never includes the content, so a File printed by accident (a
// %v in a log or a panic) leaks nothing.
func (f File) String() string {
	return fmt.Sprintf("File{secret=%q path=%q bytes=%d}", f.Secret, f.Path, len(f.Content))
}

// GoString is String, for %#v.
func (f File) GoString() string { return f.String() }

// Result is the outcome for one File.
type Result struct {
	Secret string
	// Path is the resolved absolute path, "" if it could not be resolved.
	Path    string
	Outcome Outcome
	// Err is set for Failed: it names the secret and the path.
	Err error
	// Winner is set for LostCollision: the secret whose content was kept.
	Winner string
	// InPlace is set for a Written file that was rewritten in place rather
	// than replaced atomically: why (a mount point, or an owner, group or
	// attribute the process could not give a replacement).
	InPlace string
}

// Writer writes file secrets.
//
// Guarantees, on a filesystem with POSIX rename (afero.OsFs on Linux and
// macOS):
//   - a reader of the target sees the old content or the new, never a mix:
//     content goes to a temporary file in the same directory, is fsynced and
//     renamed over the target, and the directory is fsynced, all before
//     WriteAll returns;
//   - on any failure the old file is intact and the temporary file removed;
//   - a process killed mid-write leaves no partial file: on Linux the
//     temporary file has no name (O_TMPFILE) until it holds the whole
//     content and its attributes, just before its fsync. One killed in the
//     short window from that name to the rename leaves a hidden
//     ".courier-tmp-*" file, mode 0600, holding a whole value; a Writer
//     removes those older than two minutes the first time it writes into
//     their directory;
//   - an existing file keeps its permission bits, owner, group and, on
//     Linux, its extended attributes: the POSIX ACL (system.posix_acl_access),
//     the SELinux label (security.selinux) and user.* attributes are copied
//     onto the replacement before the rename; a filesystem without xattr
//     support (ENOTSUP) has none to keep, and attributes the process may
//     not even list (trusted.* unless root) are not seen, so not kept;
//   - when the process may not give the replacement that owner, group or an
//     attribute (an agent running as the workspace user, a file of another
//     group), the file is rewritten in place instead, with one warning and
//     Result.InPlace saying why: nothing is changed silently, and nothing
//     is escalated — a file the process may not write fails, untouched;
//   - a new file is 0600, new parents 0700;
//   - a symlink target is followed: the file it points to is replaced and
//     the link stays a link;
//   - identical content is not rewritten, so mtime is unchanged;
//   - no file other than its own temporary files is ever removed.
//
// Costs, for N files in D directories: one symlink walk and one mkdir check
// per directory, and per file a look at the target (lstat; a read when its
// size matches), the temporary file's create, write, attribute calls on its
// handle, link, fsync and rename; one fsync per directory, run by the last
// write into it. At most Config.Parallelism writes run at once.
//
// It does not guarantee atomicity for a file written in place: a target that
// is a mount point (a file bind-mounted into a container cannot be renamed
// over), or whose owner, group or attributes a replacement could not keep.
// A reader may then see a partial file while it is written.
//
// Backends: extended attributes are copied only with afero.OsFs on Linux
// (afero has no xattr API); elsewhere mode is kept, and owner and group
// where the backend's FileInfo carries a syscall.Stat_t. On afero.MemMapFs
// there are no symlinks and fsync is a no-op; the logic is the same.
//
// On Windows (afero.OsFs, Config.OS "windows"), what holds instead:
//   - "~/" is the user profile (Home, %USERPROFILE% by default) and "/x/y"
//     is "x/y" on Config.Drive, the drive of the agent's working directory;
//     names differing only by case are one file, so they collide (R8);
//   - the replacement is renamed over the target by os.Rename, which is
//     MoveFileEx with MOVEFILE_REPLACE_EXISTING: on NTFS a reader opening
//     the file sees the old content or the new. A reader that holds the
//     old file open without FILE_SHARE_DELETE makes the rename fail; the
//     file is then left as it was and the failure reported, not retried;
//   - an existing file's DACL, and whether it is protected from
//     inheritance, is copied onto the replacement before the rename; its
//     owner is not (the agent's user creates the replacement), nor its
//     SACL (auditing; reading it needs a privilege the agent lacks),
//     alternate data streams or attributes such as hidden or read-only
//     (a read-only target fails the rename, and is reported);
//   - a new file gets an explicit, protected DACL with one entry, full
//     control for the agent's user: no other user, group or administrator
//     entry, nothing inherited from the directory. Administrators can
//     still take ownership, as everywhere on Windows;
//   - new parent directories inherit their parent's ACL (the user profile
//     is the user's own); mode bits other than read-only mean nothing;
//   - fsync is FlushFileBuffers; directories are not synced (Windows
//     cannot open them for it), so a rename's durability across a power
//     loss rests on NTFS's journal.
//
// A Writer is safe for concurrent use; concurrent writes to the same path
// from different Writers or processes are not coordinated.
type Writer struct {
	cfg   Config
	log   *zap.Logger
	paths pathRules
	// guard is Config.Protected as keys, each as given and as resolved;
	// confine is Config.Confine the same way.
	guard, confine []string
	// noTmpfile is set once an O_TMPFILE file could not be linked: every
	// later write uses a named temporary file from the start.
	noTmpfile atomic.Bool
	// swept holds the directories sweepOnce has cleaned (by paths.key).
	swept sync.Map
}

// New validates cfg, fills its defaults and returns a Writer. It starts
// nothing.
func New(cfg Config) (*Writer, error) {
	d := DefaultConfig()
	if cfg.Fs == nil {
		cfg.Fs = d.Fs
	}
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = d.Parallelism
	}
	if cfg.OS == "" {
		cfg.OS = runtime.GOOS
	}
	if cfg.OS == "windows" && cfg.Drive == "" {
		cfg.Drive = defaultDrive(cfg.Home)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{cfg: cfg, log: cfg.Logger, paths: newPathRules(cfg)}
	for _, p := range cfg.Protected {
		// As written and as resolved now: a protected directory reached
		// through a symlink is still itself.
		w.guard = append(w.guard, w.paths.key(path.Clean(toSlash(p))))
		if r, err := w.followLinks(toSlash(p)); err == nil {
			w.guard = append(w.guard, w.paths.key(r))
		}
	}
	if cfg.Confine != "" {
		w.confine = []string{w.paths.key(path.Clean(toSlash(cfg.Confine)))}
		if r, err := w.followLinks(path.Clean(toSlash(cfg.Confine))); err == nil {
			w.confine = append(w.confine, w.paths.key(r))
		}
	}
	return w, nil
}

// outside reports whether Config.Confine is set and the resolved path p is
// not under it.
func (w *Writer) outside(p string) bool {
	if len(w.confine) == 0 {
		return false
	}
	k := w.paths.key(p)
	for _, c := range w.confine {
		if strings.HasPrefix(k, strings.TrimSuffix(c, "/")+"/") {
			return false
		}
	}
	return true
}

// settleNesting settles winners whose paths nest (one is a directory the
// other is in: ~/.npmrc and ~/.npmrc/extra) as a collision (R8): both
// cannot be on disk, and which one was written used to depend on what the
// disk already held. The same rule decides (most recently updated wins,
// ties by name), the other loses the collision, and one warning names
// both. It returns the winners left.
func (w *Writer) settleNesting(files []File, results []Result, winners []int) []int {
	lost := map[int]bool{}
	sorted := slices.Clone(winners)
	slices.SortFunc(sorted, func(a, b int) int { return strings.Compare(w.paths.key(results[a].Path), w.paths.key(results[b].Path)) })
	for x, i := range sorted {
		for _, j := range sorted[x+1:] {
			ki, kj := w.paths.key(results[i].Path), w.paths.key(results[j].Path)
			if !strings.HasPrefix(kj, ki+"/") {
				continue // sorted: a path's descendants follow it, though not only them
			}
			if lost[i] || lost[j] {
				continue
			}
			win, lose := i, j
			if beats(files[j], files[i]) {
				win, lose = j, i
			}
			lost[lose] = true
			results[lose].Outcome, results[lose].Winner = LostCollision, files[win].Secret
			w.log.Warn("file secrets collide: one's path is a directory of the other's; one file is kept",
				zap.String("path", results[i].Path), zap.String("inside", results[j].Path),
				zap.Strings("secrets", []string{files[i].Secret, files[j].Secret}), zap.String("kept", files[win].Secret),
				zap.String("rule", "most recently updated wins, ties by name"))
		}
	}
	if len(lost) == 0 {
		return winners
	}
	return slices.DeleteFunc(winners, func(i int) bool { return lost[i] })
}

// protected reports whether the resolved path p is, or is under, one of
// Config.Protected.
func (w *Writer) protected(p string) bool {
	k := w.paths.key(p)
	for _, g := range w.guard {
		if k == g || strings.HasPrefix(k, strings.TrimSuffix(g, "/")+"/") {
			return true
		}
	}
	return false
}

// WriteAll resolves every file, settles collisions, writes the survivors
// concurrently (at most Config.Parallelism at once) and returns one Result
// per input File, in input order. A failure of one file does not stop the
// others.
//
// Collision rule (R8): files whose paths resolve to the same absolute path
// form a group; the one with the latest UpdatedAt wins, ties going to the
// lexically smallest secret name. One warning per group names the path and
// every secret in it, never a value.
func (w *Writer) WriteAll(ctx context.Context, files []File) []Result {
	results := make([]Result, len(files))
	b := newBatch(w)
	groups := map[string][]int{}
	var order []string
	for i, f := range files {
		results[i] = Result{Secret: f.Secret}
		p, err := b.resolve(f.Path)
		if err != nil {
			results[i].Outcome, results[i].Err = Failed, fmt.Errorf("secret %q: file %q: %w", f.Secret, f.Path, err)
			continue
		}
		if w.protected(p) {
			results[i].Outcome, results[i].Err = Failed, fmt.Errorf("secret %q: file %q: %w", f.Secret, p, ErrProtected)
			continue
		}
		if w.outside(p) {
			results[i].Outcome, results[i].Err = Failed, fmt.Errorf("secret %q: file %q: %w %s", f.Secret, p, ErrOutside, w.cfg.Confine)
			continue
		}
		results[i].Path = p
		// On Windows, names differing only by case are one file.
		k := w.paths.key(p)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}

	var winners []int
	for _, p := range order {
		idx := groups[p]
		win := idx[0]
		for _, i := range idx[1:] {
			if beats(files[i], files[win]) {
				win = i
			}
		}
		winners = append(winners, win)
		if len(idx) == 1 {
			continue
		}
		names := make([]string, 0, len(idx))
		for _, i := range idx {
			names = append(names, files[i].Secret)
			if i != win {
				results[i].Outcome, results[i].Winner = LostCollision, files[win].Secret
			}
		}
		slices.Sort(names)
		w.log.Warn("file secrets collide: they resolve to the same path; one file is kept",
			zap.String("path", results[win].Path), zap.Strings("secrets", names), zap.String("kept", files[win].Secret),
			zap.String("rule", "most recently updated wins, ties by name"))
	}
	winners = w.settleNesting(files, results, winners)

	// Each directory is fsynced once, by whichever write into it ends
	// last, so its fsync overlaps the writes still running elsewhere.
	left := map[string]*dirWrites{}
	for _, i := range winners {
		d := path.Dir(results[i].Path)
		if left[d] == nil {
			left[d] = &dirWrites{}
		}
		left[d].n.Add(1)
	}
	// A write's goroutine starts only once it has a slot: fifty goroutines
	// queued on a semaphore cost measurably more than sixteen running.
	sem := make(chan struct{}, w.cfg.Parallelism)
	var wg sync.WaitGroup
	for _, i := range winners {
		dir := path.Dir(results[i].Path)
		dw := left[dir]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i].Outcome, results[i].Err = Failed, fmt.Errorf("secret %q: file %q: %w", files[i].Secret, results[i].Path, ctx.Err())
			w.lastSyncsDir(dw, dir)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.lastSyncsDir(dw, dir)
			defer func() { <-sem }()
			out, inPlace, err := w.write(ctx, b, results[i].Path, files[i].Content)
			results[i].Outcome, results[i].InPlace = out, inPlace
			if out == Written {
				dw.written.Store(true)
			}
			if err != nil {
				results[i].Err = fmt.Errorf("secret %q: file %q: %w", files[i].Secret, results[i].Path, err)
			}
		}()
	}
	wg.Wait()
	return results
}

// dirWrites counts the writes into one directory still running, and
// whether any of them renamed a file into it.
type dirWrites struct {
	n       atomic.Int32
	written atomic.Bool
}

// lastSyncsDir ends one write into dir: the last one to end fsyncs dir if
// any wrote there — step (8) of write. It runs outside the write's slot of
// Config.Parallelism, so a directory's fsync never holds up a file's.
func (w *Writer) lastSyncsDir(dw *dirWrites, dir string) {
	if dw.n.Add(-1) == 0 && dw.written.Load() {
		w.syncDir(dir)
	}
}

// beats reports whether a wins a collision against b (see Wins).
func beats(a, b File) bool { return Wins(a.UpdatedAt, a.Secret, b.UpdatedAt, b.Secret) }

// Wins is R8's collision rule, the one place it is written: of two secrets
// that resolve to one file, the more recently updated wins, and a tie goes
// to the smaller name. inject's plan uses it too, so the two cannot drift.
func Wins(aUpdated time.Time, aName string, bUpdated time.Time, bName string) bool {
	if !aUpdated.Equal(bUpdated) {
		return aUpdated.After(bUpdated)
	}
	return aName < bName
}

// Resolve turns a secret's file target into the absolute path written:
// "~/" expands to Home, the result is cleaned, and symlinks among the
// existing components — parents and the file itself — are followed, so two
// spellings of one file resolve to the same string. Relative, "~user/",
// empty and NUL-holding paths are refused with ErrPath.
//
// On Windows (Config.OS) "~/" expands to Home (the user profile, as
// %USERPROFILE% names it) and "/x/y" to Config.Drive's root ("C:/x/y");
// the result uses forward slashes, which Windows accepts; a backslash in the
// target separates components too. Targets that Windows would read as
// something else are refused: a ':' (a drive or an alternate data stream),
// a component ending in '.' or ' ' (Windows strips them), and device names
// (CON, NUL, COM1, ...).
func (w *Writer) Resolve(p string) (string, error) {
	p, err := w.paths.expand(p)
	if err != nil {
		return "", err
	}
	return w.followLinks(p)
}
