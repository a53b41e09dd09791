package memrelease

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappingOf(t *testing.T) {
	const ino = 1234567
	for _, tc := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-0091e000 r-xp 00000000 fd:01 1234567 /usr/bin/courier-agent", 0x400000, 0x91e000, true},
		{"0091e000-00ead000 r--p 0051e000 fd:01 1234567 /usr/bin/courier-agent", 0x91e000, 0xead000, true},
		{"0091e000-00ead000 r--p 0051e000 fd:01 1234567 /usr/bin/courier agent (deleted)", 0x91e000, 0xead000, true},
		// Writable: its pages may differ from the file.
		{"00ead000-00f16000 rw-p 00aad000 fd:01 1234567 /usr/bin/courier-agent", 0, 0, false},
		{"00ead000-00f16000 rwxp 00aad000 fd:01 1234567 /usr/bin/courier-agent", 0, 0, false},
		// Shared: not this process's copy to drop.
		{"00400000-0091e000 r-xs 00000000 fd:01 1234567 /usr/bin/courier-agent", 0, 0, false},
		// Another file, or anonymous memory.
		{"7fd00eb46000-7fd00ec9c000 r-xp 00026000 fd:01 7654321 /usr/lib/libc.so.6", 0, 0, false},
		{"3cc9b7400000-3cc9b7800000 r--p 00000000 00:00 0", 0, 0, false},
		// Malformed.
		{"", 0, 0, false},
		{"garbage", 0, 0, false},
		{"00400000 r-xp 00000000 fd:01 1234567 /x", 0, 0, false},
		{"zz-0091e000 r-xp 00000000 fd:01 1234567 /x", 0, 0, false},
		{"0091e000-00400000 r-xp 00000000 fd:01 1234567 /x", 0, 0, false},
		{"00400000-0091e000 r-x 00000000 fd:01 1234567 /x", 0, 0, false},
		{"00400000-0091e000 r-xp 00000000 fd:01 -1 /x", 0, 0, false},
	} {
		s, e, ok := readOnlyMappingOf([]byte(tc.line), ino)
		if s != tc.start || e != tc.end || ok != tc.ok {
			t.Errorf("%q: got %#x-%#x %v, want %#x-%#x %v", tc.line, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
	if _, _, ok := readOnlyMappingOf([]byte("00400000-0091e000 r-xp 00000000 00:00 0 [vdso]"), 0); ok {
		t.Error("inode 0 (not a file) matched")
	}
}

// After AfterBurst the process's resident set holds fewer pages of its
// executable, and the code it dropped still runs.
func TestAfterBurstDropsExecutablePages(t *testing.T) {
	before := rssFileKiB(t)
	AfterBurst()
	after := rssFileKiB(t)
	if after >= before {
		t.Fatalf("RssFile %d KiB before, %d KiB after: nothing dropped", before, after)
	}
	// Code and read-only data come back on use.
	if got := strings.Repeat(strconv.Itoa(42), 3); got != "424242" {
		t.Fatalf("got %q", got)
	}
	t.Logf("RssFile %d KiB before, %d KiB after", before, after)
}

func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
