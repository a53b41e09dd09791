package agent

import (
	"time"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/inject"
)

// wireReport converts an apply's report for the control plane. This is where
// the rules package (inject) meets the wire (proto), so neither imports the
// other. Errors become their messages, which never hold values.
func wireReport(r inject.Report, at time.Time) proto.ApplyReport {
	out := proto.ApplyReport{At: at, Warnings: r.Warnings}
	for _, o := range r.Outcomes {
		po := proto.Outcome{Secret: o.Name, Path: o.Path, Target: o.Target, EnvName: o.EnvName, Outcome: o.Outcome,
			Winner: o.Winner, InPlace: o.InPlace}
		if o.Err != nil {
			po.Error = o.Err.Error()
		}
		out.Outcomes = append(out.Outcomes, po)
	}
	return out
}
