package controlplane

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/courierhq/courier/agent/proto"
)

// metrics are the server's Prometheus collectors, on a registry of their own
// (never the global one, so two servers in one test process do not clash).
// Routes are labelled by their ServeMux pattern, never the raw path, so
// usernames and secret names never become label values.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	applied  *prometheus.CounterVec
	// sshTotal and sshActive count the SSH connections proxied to agents
	// (courier ssh, OpenSSH through --stdio, port-forward). What runs
	// inside them (sessions, sftp, forwards) the agents count and log.
	sshTotal  prometheus.Counter
	sshActive prometheus.Gauge
}

// agentGauges is what the metrics read of the agents' endpoint.
type agentGauges interface {
	Connected() int
	StatusBacklog() (pending int, dropped uint64)
}

// lazyGauges reads the server's agents endpoint, which is set after the
// metrics are made.
type lazyGauges struct{ s *Server }

func (g lazyGauges) Connected() int { return g.s.agents.Connected() }

func (g lazyGauges) StatusBacklog() (int, uint64) { return g.s.agents.StatusBacklog() }

func newMetrics(agents agentGauges) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "courier_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "courier_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "courier_secrets_applied_total",
			Help: "Secrets applied by agents, from their apply reports, by outcome.",
		}, []string{"outcome"}),
		sshTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "courier_ssh_connections_total",
			Help: "SSH connections proxied to workspace agents.",
		}),
		sshActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "courier_ssh_connections_active",
			Help: "SSH connections proxied to workspace agents now.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.applied, m.sshTotal, m.sshActive,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "courier_agents_connected",
			Help: "Agents connected to this control plane now.",
		}, func() float64 { return float64(agents.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "courier_agent_status_pending",
			Help: "Agents' status changes (connects, disconnects, apply reports) waiting to be written to the database; grows while it is unavailable.",
		}, func() float64 { n, _ := agents.StatusBacklog(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "courier_agent_status_dropped_total",
			Help: "Agents' status changes dropped because too many were waiting for an unavailable database.",
		}, func() float64 { _, d := agents.StatusBacklog(); return float64(d) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// sshStarted counts a proxied SSH connection; call the result when it ends.
func (m *metrics) sshStarted() (ended func()) {
	m.sshTotal.Inc()
	m.sshActive.Inc()
	return m.sshActive.Dec
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument counts and times every request by its route pattern and logs
// it at debug level, without its path (which can hold names).
func (m *metrics) instrument(log *zap.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern // set by ServeMux on this same request
		if route == "" {
			route = "unmatched"
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut, http.MethodHead:
		default:
			method = "other"
		}
		d := time.Since(start)
		m.requests.WithLabelValues(route, method, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(d.Seconds())
		log.Debug("request", zap.String("route", route), zap.String("method", method),
			zap.Int("status", sw.status), zap.Duration("duration", d))
	})
}

// statusWriter records the status code. It passes Hijack and Unwrap through,
// which websocket upgrades need.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("response writer cannot hijack")
	}
	w.status, w.wrote = http.StatusSwitchingProtocols, true
	return hj.Hijack()
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// observeApply counts one agent apply report by outcome. The workspace ID is
// not a label: it would grow without bound.
func (m *metrics) observeApply(_ string, rep proto.ApplyReport) {
	for _, o := range rep.Outcomes {
		m.applied.WithLabelValues(o.Outcome).Inc()
	}
}
