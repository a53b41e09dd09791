package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/inject"
)

// TestOutcomesAgree holds inject's outcome strings to the protocol's: the
// agent sends inject's values where the control plane expects proto's.
func TestOutcomesAgree(t *testing.T) {
	for _, c := range []struct{ rules, wire string }{
		{inject.OutcomeWritten, proto.OutcomeWritten},
		{inject.OutcomeUnchanged, proto.OutcomeUnchanged},
		{inject.OutcomeCollision, proto.OutcomeCollision},
		{inject.OutcomeFailed, proto.OutcomeFailed},
		{inject.OutcomeEnvOnly, proto.OutcomeEnvOnly},
		{inject.OutcomeNotInjected, proto.OutcomeNotInjected},
		{inject.OutcomeFileDisabled, proto.OutcomeFileDisabled},
		{inject.OutcomeDisabled, proto.OutcomeDisabled},
		{inject.OutcomeNotInScope, proto.OutcomeNotInScope},
	} {
		if c.rules != c.wire {
			t.Errorf("inject says %q where the protocol says %q", c.rules, c.wire)
		}
	}
}

func TestWireReport(t *testing.T) {
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	rep := inject.Report{Warnings: []string{"w"}, Outcomes: []inject.SecretOutcome{
		{Name: "a", Path: "/h/a", Outcome: inject.OutcomeWritten, InPlace: "mount point"},
		{Name: "b", Outcome: inject.OutcomeFailed, Err: errors.New("permission denied")},
		{Name: "c", Path: "/h/a", Outcome: inject.OutcomeCollision, Winner: "a"},
	}}
	got := wireReport(rep, at)
	if !got.At.Equal(at) || len(got.Outcomes) != 3 || strings.Join(got.Warnings, ",") != "w" {
		t.Fatalf("wireReport = %+v", got)
	}
	if o := got.Outcomes[0]; o.Secret != "a" || o.Path != "/h/a" || o.Outcome != proto.OutcomeWritten || o.InPlace != "mount point" {
		t.Errorf("a = %+v", o)
	}
	if o := got.Outcomes[1]; o.Outcome != proto.OutcomeFailed || o.Error != "permission denied" {
		t.Errorf("b = %+v", o)
	}
	if o := got.Outcomes[2]; o.Winner != "a" || o.Outcome != proto.OutcomeCollision {
		t.Errorf("c = %+v", o)
	}
}
