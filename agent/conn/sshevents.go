package conn

import (
	"context"
	"net/http"

	"github.com/courierhq/courier/agent/proto"
)

// ReportSSHEvents sends SSH events for the audit log; only to a control
// plane that announced proto.FeatureSSHEvents.
func (s *Session) ReportSSHEvents(ctx context.Context, r proto.SSHEventReport) error {
	return s.do(ctx, http.MethodPost, proto.PathSSHEvents, r, nil)
}
