package sshd

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of SSH activity, the "kind" label of Metrics and the "kind" field of
// the debug log lines.
const (
	kindSession              = "session"
	kindSFTP                 = "sftp"
	kindDirectTCPIP          = "direct-tcpip"
	kindDirectStreamlocal    = "direct-streamlocal"
	kindTCPIPForward         = "tcpip-forward"
	kindStreamlocalForward   = "streamlocal-forward"
	kindForwardedTCPIP       = "forwarded-tcpip"
	kindForwardedStreamlocal = "forwarded-streamlocal"
	kindAgent                = "auth-agent"
)

// Results, the "result" label of Metrics.
const (
	resultOK      = "ok"
	resultRefused = "refused" // policy said no
	resultFailed  = "failed"  // allowed, but the dial, listen or start failed
)

// Metrics counts what the server does, by kind (session, sftp,
// direct-tcpip, tcpip-forward, forwarded-tcpip, direct-streamlocal,
// streamlocal-forward, forwarded-streamlocal, auth-agent) and result (ok,
// refused, failed). Labels never hold addresses or paths.
type Metrics struct {
	total *prometheus.CounterVec
}

// NewMetrics returns counters registered with reg; nil reg leaves them
// unregistered (they still count).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "courier_agent_ssh_total",
		Help: "SSH sessions, subsystems and forwarded connections the agent served, by kind and result.",
	}, []string{"kind", "result"})}
	if reg != nil {
		if err := reg.Register(m.total); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) inc(kind, result string) { m.total.WithLabelValues(kind, result).Inc() }
