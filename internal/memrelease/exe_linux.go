package memrelease

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// dropExecutable tells the kernel the process no longer needs the pages of
// its executable's read-only mappings (code, read-only data, the function
// tables) that it has touched so far: MADV_DONTNEED on each. A Go
// program's start touches nearly all of them — every package's init runs,
// and the kernel maps 64 KiB around each page faulted in — and they stay
// in its resident set though an idle agent runs a small part of its code.
// The pages are clean copies of the file: they stay in the page cache, and
// any the process runs or reads again is mapped back on its next touch (a
// minor fault, no disk read while the cache holds it). Writable mappings
// are never touched: their pages may differ from the file.
func dropExecutable() {
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return
	}
	st, ok := self.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		start, end, ok := readOnlyMappingOf(sc.Bytes(), st.Ino)
		if ok {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED)
		}
	}
}

// readOnlyMappingOf parses a /proc/self/maps line ("start-end perms offset
// dev inode path") and reports the range of a private, non-writable mapping
// of the file with inode ino.
func readOnlyMappingOf(line []byte, ino uint64) (start, end uintptr, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 6 {
		return 0, 0, false
	}
	perms := f[1]
	if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
		return 0, 0, false
	}
	if n, err := strconv.ParseUint(string(f[4]), 10, 64); err != nil || n != ino || n == 0 {
		return 0, 0, false
	}
	lo, hi, found := bytes.Cut(f[0], []byte("-"))
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
