package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kairoscope/kairoscope/agent"
)

// newRegistry is a process's Prometheus registry, with the Go runtime's
// and the process's own metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// agentMetrics counts an agent's jobs in reg.
func agentMetrics(reg *prometheus.Registry) agent.Metrics {
	exits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairoscope_worker_exits_total",
		Help: "Jobs ended on this agent, by how: completed, failed, cancelled, released (handed back at shutdown), fenced."}, []string{"cause"})
	busy := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairoscope_agent_busy_slots",
		Help: "This agent's slots running a job, by lane."}, []string{"lane"})
	appended := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairoscope_messages_appended_total",
		Help: "Messages this agent appended to run logs."})
	appendLatency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairoscope_append_seconds",
		Help: "From an append's start to the log's acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10)})
	reg.MustRegister(exits, busy, appended, appendLatency)
	return agent.Metrics{
		WorkerExits: func(cause string) { exits.WithLabelValues(cause).Inc() },
		Busy:        func(lane string, delta int) { busy.WithLabelValues(lane).Add(float64(delta)) },
		Appended: func(_ string, _ uint64, began time.Time) {
			appended.Inc()
			appendLatency.Observe(time.Since(began).Seconds())
		},
	}
}

// serveMetrics serves reg's GET /metrics on addr until ctx is done.
func serveMetrics(ctx context.Context, e *env, addr string, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	e.log.Info().Str("addr", ln.Addr().String()).Msg("metrics listening")
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
