package loadtest

import (
	"slices"
	"testing"
)

// The control plane child gets the deployment's GODEBUG, kept beside the
// caller's own settings, and never overrides an explicit choice.
func TestWithServerGODEBUG(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"none", []string{"A=1"}, []string{"A=1", "GODEBUG=adaptivestackstart=0"}},
		{"other settings", []string{"GODEBUG=gctrace=1", "A=1"}, []string{"A=1", "GODEBUG=gctrace=1,adaptivestackstart=0"}},
		{"explicit on", []string{"GODEBUG=adaptivestackstart=1"}, []string{"GODEBUG=adaptivestackstart=1"}},
		{"explicit off", []string{"GODEBUG=x=1,adaptivestackstart=0"}, []string{"GODEBUG=x=1,adaptivestackstart=0"}},
		{"empty", []string{"GODEBUG="}, []string{"GODEBUG=adaptivestackstart=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withServerGODEBUG(tc.env); !slices.Equal(got, tc.want) {
				t.Errorf("withServerGODEBUG(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}
