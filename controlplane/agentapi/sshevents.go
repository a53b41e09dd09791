package agentapi

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/courierhq/courier/agent/proto"
	"github.com/courierhq/courier/internal/utf8clip"
)

// sshEvents takes an agent's SSH events (POST proto.PathSSHEvents) for the
// audit log: forwards opened and sftp started inside SSH connections the
// control plane relays encrypted. The agent holding the token may be
// hostile, so a report is bounded and its strings clipped; an unknown kind
// refuses the whole report (400), so nothing is half taken.
func (s *Server) sshEvents(w http.ResponseWriter, r *http.Request, sess *session) {
	var rep proto.SSHEventReport
	if !decode(w, r, &rep) {
		return
	}
	if len(rep.Events) > proto.MaxReportSSHEvents {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events in one report, at most %d",
			len(rep.Events), proto.MaxReportSSHEvents))
		return
	}
	for _, ev := range rep.Events {
		if !slices.Contains(proto.SSHEventKinds, ev.Kind) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown ssh event kind %q", utf8clip.Clip(ev.Kind, 64)))
			return
		}
	}
	if s.cfg.OnSSHEvent != nil {
		for _, ev := range rep.Events {
			ev.Target = utf8clip.Clip(ev.Target, proto.MaxSSHEventTarget)
			ev.Client = utf8clip.Clip(ev.Client, proto.MaxSSHEventClient)
			ev.User = utf8clip.Clip(ev.User, proto.MaxSSHEventUser)
			s.cfg.OnSSHEvent(sess.ws.workspace(), ev)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
