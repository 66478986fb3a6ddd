package ws

import (
	"net/http"
	"strings"

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

	// MaxBody bounds a REST request body (default 64 KiB).
	MaxBody int64

	// AllowedOrigins lists the Origin values (e.g. "https://dash.example")
	// that may open a WebSocket, compared case-insensitively. Empty accepts
	// any Origin: the seed's client runs from any page or the console. A
	// request without Origin is not from a browser and is always accepted.
	// A refused Origin gets HTTP 403.
	AllowedOrigins []string

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
	// MaxQueuedForecasts is how many forecasts may wait (default 8); more
	// get HTTP 503 before the upgrade.
	MaxQueuedForecasts int
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
		Device:             schema.DeviceAuto,
		OnOOM:              schema.OnOOMFail,
		MaxQueuedRuns:      8,
		MaxQueuedForecasts: 8,
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
	or(&c.MaxQueuedForecasts, d.MaxQueuedForecasts)
	or(&c.Horizon, d.Horizon)
	or(&c.MaxHorizon, d.MaxHorizon)
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

// checkOrigin reports whether r may be upgraded under AllowedOrigins.
func (c Config) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(c.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	for _, o := range c.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
