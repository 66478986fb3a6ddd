package ws

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/web"
)

// ServerConfig is everything the server needs besides its jobs.
type ServerConfig struct {
	Config                // WebSocket limits
	Runs    RunsConfig    // training runs
	Predict PredictConfig // the prediction pipeline
	Token   string        // when set, every request needs it (Authorization: Bearer, or ?token=)
	Version string
	Devices []DeviceStatus // what GET / reports about devices
	MaxBody int64          // largest REST request body (default 64 KiB)
}

// DeviceStatus says whether a device can run jobs, and why not.
type DeviceStatus struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Server serves the hub, the pipeline and the REST API.
type Server struct {
	cfg       ServerConfig
	log       zerolog.Logger
	hub       *Hub
	runs      *Runs
	pipeline  *Pipeline
	upgrading atomic.Int64 // WebSocket handshakes in progress
	started   time.Time
	ctx       context.Context // cancelled at shutdown: the parent of every run
}

// NewServer wires the server; Run starts it.
func NewServer(ctx context.Context, cfg ServerConfig, jobs Jobs, log zerolog.Logger) *Server {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	hubCfg := cfg.Config
	if hubCfg.Abridge == nil {
		hubCfg.Abridge = abridgeDelta
	}
	hub := NewHub(hubCfg, log.With().Str("hub", "/ws").Logger())
	s := &Server{cfg: cfg, log: log, hub: hub, started: time.Now(), ctx: ctx}
	s.runs = NewRuns(cfg.Runs, jobs, hub, log)
	s.pipeline = NewPipeline(cfg.Predict, cfg.Config, jobs, log.With().Str("hub", "/ws/predict").Logger())
	return s
}

// Run serves the hubs and the pipeline until ctx is done. Then, in order:
// the runs (whose context is NewServer's, cancelled with ctx) end and
// publish their last message, the pipeline finishes its forecasts with an
// error, and only then do the hubs deliver what is pending and close every
// client with a close frame, so no client misses how its run ended.
func (s *Server) Run(ctx context.Context) {
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { s.hub.Run(hubCtx); close(hubDone) }()
	s.pipeline.Run(ctx) // returns after ctx is done and its own hub closed
	s.runs.Wait()
	stopHub()
	<-hubDone
}

// Runs is the run registry (for --train-on-start).
func (s *Server) Runs() *Runs { return s.runs }

// Handler routes every endpoint through authentication, but the dashboard's
// static page and assets (package web): they hold no data, and a browser
// loading them cannot attach the token; the page passes it on to the API.
func (s *Server) Handler() http.Handler {
	root := http.NewServeMux()
	root.Handle("GET "+web.Path, web.Handler())
	root.Handle("GET "+web.Path+"/", web.Handler())
	mux := http.NewServeMux()
	root.Handle("/", s.authenticate(mux))
	mux.HandleFunc("GET /{$}", s.health)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /ws", s.limitConns(s.hub.ServeWS))
	mux.HandleFunc("GET /ws/predict", s.limitConns(s.pipeline.ServeWS))
	mux.HandleFunc("GET /api/datasets", s.listDatasets)
	mux.HandleFunc("POST /api/runs", s.startRun)
	mux.HandleFunc("GET /api/runs", s.listRuns)
	mux.HandleFunc("GET /api/runs/{id}", s.getRun)
	mux.HandleFunc("DELETE /api/runs/{id}", s.cancelRun)
	return root
}

// authenticate demands the token, when one is set, from every request. The
// seed's browser client cannot set headers on a WebSocket, hence ?token=.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			got = strings.TrimPrefix(h, "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kairoscope"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitConns refuses a WebSocket beyond MaxConnections before upgrading.
// The hubs count registered clients; upgrading counts those on their way,
// so a burst of connections cannot overshoot the cap.
func (s *Server) limitConns(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := int(s.upgrading.Add(1))
		defer s.upgrading.Add(-1)
		if max := s.cfg.MaxConnections; max > 0 && n+s.hub.Clients()+s.pipeline.Clients() > max {
			writeError(w, http.StatusServiceUnavailable, "too many connections; try again later")
			return
		}
		h(w, r)
	}
}

// Health is GET /: what the seed's `curl http://localhost:8000/` check sees.
type Health struct {
	Status        string          `json:"status"`
	Service       string          `json:"service"`
	Version       string          `json:"version"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Devices       []DeviceStatus  `json:"devices"`
	Datasets      []datasets.Info `json:"datasets"`
	ActiveRuns    int             `json:"active_runs"`
	Clients       int             `json:"clients"`
	Endpoints     []string        `json:"endpoints"`
}

// health answers GET / with the health JSON, or, for a browser (see
// prefersHTML), with a redirect to the dashboard that keeps the query
// (?token=). curl sends "Accept: */*" and gets the JSON.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	if prefersHTML(r.Header.Values("Accept")) {
		to := web.Path
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	ds, err := datasets.Describe()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Health{
		Status: "ok", Service: "kairoscope", Version: s.cfg.Version, UptimeSeconds: time.Since(s.started).Seconds(),
		Devices: s.cfg.Devices, Datasets: ds, ActiveRuns: s.runs.Active(), Clients: s.hub.Clients() + s.pipeline.Clients(),
		Endpoints: []string{"GET /", "GET " + web.Path, "GET /ws", "GET /ws/predict?dataset=&horizon=", "GET /api/datasets",
			"POST /api/runs", "GET /api/runs", "GET /api/runs/{id}", "DELETE /api/runs/{id}"},
	})
}

// prefersHTML reports whether an Accept header names HTML (text/html or
// application/xhtml+xml) with a quality above 0 and at least that of JSON,
// as a browser's navigation does ("text/html,...,*/*;q=0.8"). Wildcards
// alone never choose HTML: "*/*" (curl) and "text/*" get the JSON, as does
// a client that ranks application/json above HTML.
func prefersHTML(accept []string) bool {
	htmlQ, jsonQ := 0.0, -1.0
	jsonRank := -1 // how closely jsonQ's range matches: 2 application/json, 1 application/*, 0 */*
	for _, field := range accept {
		for _, part := range strings.Split(field, ",") {
			media, params, _ := strings.Cut(part, ";")
			q := acceptQuality(params)
			switch strings.ToLower(strings.TrimSpace(media)) {
			case "text/html", "application/xhtml+xml":
				htmlQ = max(htmlQ, q)
			case "application/json":
				if jsonRank < 2 {
					jsonQ, jsonRank = q, 2
				}
			case "application/*":
				if jsonRank < 1 {
					jsonQ, jsonRank = q, 1
				}
			case "*/*":
				if jsonRank < 0 {
					jsonQ, jsonRank = q, 0
				}
			}
		}
	}
	return htmlQ > 0 && htmlQ >= jsonQ
}

// acceptQuality returns the q of a media range's parameters ("q=0.8;
// level=1"): 1 when absent, 0 when malformed or out of [0, 1].
func acceptQuality(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || q < 0 || q > 1 {
				return 0
			}
			return q
		}
	}
	return 1
}

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	ds, err := datasets.Describe()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	req, err := schema.DecodeRunRequest(r.Body, s.cfg.MaxBody)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Dataset == "" {
		req.Dataset = datasets.Default
	}
	if _, err := datasets.Load(req.Dataset); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	info, err := s.runs.Start(s.ctx, req)
	if errors.Is(err, ErrQueueFull) {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	} else if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Location", "/api/runs/"+info.ID)
	writeJSON(w, http.StatusAccepted, info)
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.runs.List())
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	info, err := s.runs.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	info, err := s.runs.Cancel(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, info)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "S&P", not "S\u0026P"
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
