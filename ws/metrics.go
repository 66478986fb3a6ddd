package ws

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// collector is the replica's Prometheus collector: run and queue gauges
// read from the log at scrape time, the hubs' counters, and the delivery
// lag the feed observes.
type collector struct {
	s       *Server
	lag     prometheus.Histogram
	refused *prometheus.CounterVec // requests refused before any work, by reason (guard.go, limits.go)

	runs, queue, agents, slots, clients *prometheus.Desc
	sent, bytes, slow                   *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kairoscope_"+name, help, labels, nil)
	}
	return &collector{
		s: s,
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kairoscope_delivery_lag_seconds",
			Help: "From a message stored in the run log to this replica's hub having it.",
			// 1 ms to 10 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 11),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kairoscope_http_refused_total",
			Help: "Requests refused before any work: host (DNS rebinding), origin, cross_site, content_type, rate (jobs started too fast), cost (a run too costly).",
		}, []string{"reason"}),
		runs:    d("runs", "Jobs in the run log by lane (train, forecast) and state.", "lane", "state"),
		queue:   d("queue_depth", "Jobs waiting for an agent, by lane and device class.", "lane", "class"),
		agents:  d("agents", "Agents whose heartbeat is fresh."),
		slots:   d("agent_slots", "Agents' job slots by lane: total and free.", "lane", "kind"),
		clients: d("ws_clients", "Connected WebSocket clients.", "endpoint"),
		sent:    d("ws_messages_sent_total", "Frames written to WebSocket clients.", "endpoint"),
		bytes:   d("ws_bytes_sent_total", "Bytes written to WebSocket clients.", "endpoint"),
		slow:    d("ws_slow_closes_total", "Clients closed as slow (4008).", "endpoint"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs, c.queue, c.agents, c.slots, c.clients, c.sent, c.bytes, c.slow} {
		ch <- d
	}
	c.lag.Describe(ch)
	c.refused.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	states := []string{runlog.StateQueued, runlog.StateRunning, runlog.StateCancelling, runlog.StateCompleted, runlog.StateFailed, runlog.StateCancelled}
	for _, lane := range runlog.Lanes {
		for _, st := range states {
			gauge(c.runs, s.records.count(lane, st), lane, st)
		}
		for _, class := range runlog.Classes {
			if n, err := s.l.QueueDepth(ctx, lane, class); err == nil {
				gauge(c.queue, n, lane, class)
			}
		}
	}
	if agents, err := s.l.Agents(ctx); err == nil {
		gauge(c.agents, len(agents))
		for _, lane := range runlog.Lanes {
			total, busy := 0, 0
			for _, a := range agents {
				for _, sl := range a.Lanes {
					if sl.Lane == lane {
						total, busy = total+sl.Slots, busy+sl.Busy
					}
				}
			}
			gauge(c.slots, total, lane, "total")
			gauge(c.slots, max(total-busy, 0), lane, "free")
		}
	}
	for _, h := range []struct {
		name string
		hub  *hub.Hub
	}{{"/ws", s.runs}, {"/ws/predict", s.forecasts}} {
		st := h.hub.Stats()
		gauge(c.clients, h.hub.Clients(), h.name)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.Frames), h.name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.Bytes), h.name)
		ch <- prometheus.MustNewConstMetric(c.slow, prometheus.CounterValue, float64(st.SlowCloses), h.name)
	}
	c.lag.Collect(ch)
	c.refused.Collect(ch)
}

// refuse counts a request refused for reason.
func (s *Server) refuse(reason string) { s.metrics.refused.WithLabelValues(reason).Inc() }

// Collector is the replica's Prometheus collector, for GET /metrics (the
// caller registers it, with the local agent's and the process's own).
func (s *Server) Collector() prometheus.Collector { return s.metrics }
