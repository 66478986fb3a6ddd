package ws

import (
	"net/http"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// Config holds every setting and limit of the server. A zero field takes
// its documented default, so Config{} is a working server; the server reads
// it once, in NewServer.
type Config struct {
	// Hub holds the WebSocket limits of /ws and /ws/predict: send queue,
	// client message size, write and pong timeouts, history kept in memory
	// (see hub.Config).
	Hub hub.Config

	// MaxConnections caps concurrent WebSocket connections on /ws and
	// /ws/predict together (default 2000). Beyond it the server answers
	// HTTP 503 before upgrading.
	MaxConnections int

	// MaxBody bounds a run request's body (default 64 KiB): more gets HTTP
	// 400. Datasets have their own limit (datasets.Options.MaxBytes).
	MaxBody int64

	// HTTP limits of every request (HTTPServer): its headers must arrive
	// within ReadHeaderTimeout (default 10s) and be at most MaxHeaderBytes
	// (default 64 KiB; more gets 431), its body within ReadTimeout (default
	// 2 min: a dataset upload of MaxDatasetBytes on a slow link), its answer
	// be written within WriteTimeout (default 2 min); a keep-alive
	// connection idle for IdleTimeout (default 2 min) is closed. A request
	// past a timeout has its connection closed. WebSockets are exempt once
	// upgraded (hub.Config's WriteWait and PongWait).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int

	// AllowedOrigins lists the Origins (e.g. "https://dash.example"), besides
	// the server's own and pages on localhost, whose pages may use the server:
	// REST (with CORS headers) and WebSockets; "*" allows any page, "null"
	// sandboxed frames and file: pages. A request without Origin is not from
	// a browser's script and is never refused for it. Any other Origin gets
	// HTTP 403 (guard.go).
	AllowedOrigins []string

	// AllowedHosts lists the names, besides localhost and IP addresses, that
	// requests may carry in their Host header (".example.com": its
	// subdomains too; "*": any). Another name gets HTTP 403: a page whose
	// name was pointed at this machine (DNS rebinding) must not reach it.
	AllowedHosts []string

	// Token, when set, is required on every request (Authorization: Bearer,
	// or ?token=).
	Token string

	// Device is the default device of a run and of every forecast: auto
	// (the default), cpu or gpu.
	Device string
	// OnOOM is the default of a run's on_oom: fail (the default) or halve.
	OnOOM string

	// MaxQueuedRuns is how many runs may wait for an agent (default 8); more
	// get HTTP 429.
	MaxQueuedRuns int
	// MaxRunCost bounds a run request's estimated cost, trials × folds ×
	// epochs × samples × weights (schema.RunRequest.Cost; default 1e14,
	// about 2 hours of the 2-core development machine if nothing stopped
	// early): more gets HTTP 400 naming the limit.
	MaxRunCost float64
	// RunsPerMinute and RunBurst bound how fast one client (IP address)
	// starts jobs, runs and new forecasts: RunBurst at once (default 30),
	// then RunsPerMinute (default 30). More get HTTP 429 with Retry-After.
	RunsPerMinute, RunBurst int
	// MaxQueuedForecasts is how many forecasts may wait (default 8); more
	// get HTTP 503 before the upgrade.
	MaxQueuedForecasts int
	// ForecastGrace is how long a forecast whose clients have all left
	// keeps running (default 10s), so that one reconnecting rejoins it;
	// then it is cancelled. An agent also stops any forecast past its
	// wall-clock limit (agent.Config.MaxForecastTime).
	ForecastGrace time.Duration
	// Horizon is the days forecast when a client names none (default 30);
	// MaxHorizon the largest ?horizon= (default 365).
	Horizon, MaxHorizon int

	// Datasets is what runs and forecasts read and what the dataset API
	// serves; nil: the embedded datasets alone, read-only.
	Datasets *datasets.Store

	// Metrics, when set, serves GET /metrics (Prometheus): the caller's
	// registry, holding Server.Collector and whatever else it registers.
	Metrics http.Handler

	// Version and Devices are what GET / reports.
	Version string
	Devices []DeviceStatus
}

// DeviceStatus says whether a device can run jobs, and why not.
type DeviceStatus struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Hub:                hub.DefaultConfig(),
		MaxConnections:     2000,
		MaxBody:            64 << 10,
		ReadHeaderTimeout:  10 * time.Second,
		ReadTimeout:        2 * time.Minute,
		WriteTimeout:       2 * time.Minute,
		IdleTimeout:        2 * time.Minute,
		MaxHeaderBytes:     64 << 10,
		Device:             schema.DeviceAuto,
		OnOOM:              schema.OnOOMFail,
		MaxQueuedRuns:      8,
		MaxRunCost:         1e14,
		RunsPerMinute:      30,
		RunBurst:           30,
		MaxQueuedForecasts: 8,
		ForecastGrace:      10 * time.Second,
		Horizon:            30,
		MaxHorizon:         365,
	}
}

// withDefaults replaces every zero limit with its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Hub = c.Hub.WithDefaults()
	if c.Hub.CheckOrigin == nil {
		c.Hub.CheckOrigin = c.checkOrigin
	}
	or := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&c.MaxConnections, d.MaxConnections)
	or(&c.MaxQueuedRuns, d.MaxQueuedRuns)
	or(&c.RunsPerMinute, d.RunsPerMinute)
	or(&c.RunBurst, d.RunBurst)
	if c.MaxRunCost <= 0 {
		c.MaxRunCost = d.MaxRunCost
	}
	or(&c.MaxQueuedForecasts, d.MaxQueuedForecasts)
	or(&c.Horizon, d.Horizon)
	or(&c.MaxHorizon, d.MaxHorizon)
	or(&c.MaxHeaderBytes, d.MaxHeaderBytes)
	for _, v := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.ReadHeaderTimeout, d.ReadHeaderTimeout},
		{&c.ReadTimeout, d.ReadTimeout}, {&c.WriteTimeout, d.WriteTimeout}, {&c.IdleTimeout, d.IdleTimeout}, {&c.ForecastGrace, d.ForecastGrace}} {
		if *v.p <= 0 {
			*v.p = v.def
		}
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.Device == "" {
		c.Device = d.Device
	}
	if c.OnOOM == "" {
		c.OnOOM = d.OnOOM
	}
	return c
}

// checkOrigin reports whether r may be upgraded: no Origin, or one
// originAllowed accepts (guard.go).
func (c Config) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	ok, _ := c.originAllowed(origin, r)
	return ok
}
