package controlplane

import (
	"testing"

	"github.com/courierhq/courier/agent/proto"
)

func TestOutcomeText(t *testing.T) {
	tests := []struct {
		in   proto.Outcome
		want string
		bad  bool
	}{
		{proto.Outcome{Outcome: proto.OutcomeWritten}, "written", false},
		{proto.Outcome{Outcome: proto.OutcomeUnchanged}, "unchanged", false},
		{proto.Outcome{Outcome: proto.OutcomeCollision, Winner: "abs-x"}, "lost a collision to abs-x (same file)", true},
		{proto.Outcome{Outcome: proto.OutcomeFailed, Error: "permission denied"}, "failed: permission denied", true},
		{proto.Outcome{Outcome: proto.OutcomeFileDisabled}, "file delivery disabled on this deployment", true},
		{proto.Outcome{Outcome: "disabled"}, "disabled: not delivered", false},
		{proto.Outcome{Outcome: "something-new"}, "something-new", false},
	}
	for _, tt := range tests {
		if got, bad := outcomeText(tt.in); got != tt.want || bad != tt.bad {
			t.Errorf("%+v: %q %v, want %q %v", tt.in, got, bad, tt.want, tt.bad)
		}
	}
}
