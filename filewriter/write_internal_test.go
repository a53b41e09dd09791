package filewriter

import (
	"strings"
	"syscall"
	"testing"
)

// TestChownObstacleNamesWhatCannotBeKept: the in-place warning names the
// owner or the group, whichever the agent cannot keep, not both blindly.
func TestChownObstacleNamesWhatCannotBeKept(t *testing.T) {
	cases := []struct {
		name             string
		euid, uid, gid   int
		groups           []int
		want, wantAbsent []string
	}{
		{"group only: own file, foreign group", 1002, 1002, 1005, []int{1002}, []string{"group (gid 1005)", "not one of the groups"}, []string{"owner"}},
		{"owner only: foreign owner, own group", 1002, 1003, 1002, []int{1002}, []string{"owner (uid 1003)", "another user"}, []string{"gid 1002 is not"}},
		{"both", 1002, 0, 0, []int{1002, 27}, []string{"owner (uid 0)", "group (gid 0)"}, nil},
		{"supplementary group is fine", 1002, 1003, 27, []int{1002, 27}, []string{"owner (uid 1003)"}, []string{"group (gid 27)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := chownObstacle(c.euid, c.uid, c.gid, c.groups, syscall.EPERM)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range c.wantAbsent {
				if strings.Contains(got, w) {
					t.Errorf("%q blames %q", got, w)
				}
			}
		})
	}
}
