package ws

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/web"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// Server serves the hubs, the pipeline and the REST API of one replica.
// Runs live in the run log: any replica accepts, lists and cancels any run,
// and every replica's hub follows every run's messages.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	l         *runlog.Log
	runs      *hub.Hub // /ws
	forecasts *hub.Hub // /ws/predict
	records   *records
	feed      *feed
	pipeline  *pipeline
	datasets  *datasets.Store
	charts    chartBroadcaster // where appends are announced: every replica's /ws hub
	pins      pins             // dataset versions held for queued and running jobs
	metrics   *collector
	rate      *jobRate     // jobs started by each client (limits.go)
	upgrading atomic.Int64 // WebSocket handshakes in progress
	started   time.Time
	ready     chan struct{} // closed once the feed follows and active runs are loaded
}

// NewServer wires a replica onto the run log; Run starts it.
func NewServer(cfg Config, l *runlog.Log, log zerolog.Logger) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: log, l: l, started: time.Now(), ready: make(chan struct{})}
	s.runs = hub.NewHub(cfg.Hub, log.With().Str("hub", "/ws").Logger())
	// A forecast's clients join it whole and leave at its end: a short
	// memory is enough, and the log keeps the rest.
	fcfg := cfg.Hub
	fcfg.KeepEnded = 8
	s.forecasts = hub.NewHub(fcfg, log.With().Str("hub", "/ws/predict").Logger())
	s.records = newRecords(l, log)
	s.datasets = cfg.Datasets
	if s.datasets == nil {
		s.datasets = datasets.Embedded()
	}
	s.charts = logCharts{l}
	s.pins.held = map[string]func(){}
	s.records.onChange = func(r runlog.Record) {
		if runlog.Ended(r.State) {
			s.pins.release(r.ID)
		}
	}
	s.feed = &feed{l: l, log: log, runs: s.runs, forecasts: s.forecasts, started: make(chan struct{})}
	s.pipeline = newPipeline(s)
	s.rate = newJobRate(cfg.RunsPerMinute, cfg.RunBurst)
	s.metrics = newCollector(s)
	s.feed.lag = s.metrics.lag
	return s
}

// Run serves until ctx is done, then delivers what the log still holds
// for the clients and closes every client with a close frame (1001). Stop
// the agents writing to the log first, so that clients see how their runs
// were handed back.
func (s *Server) Run(ctx context.Context) {
	hubCtx, stopHubs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.runs.Run(hubCtx) })
	wg.Go(func() { s.forecasts.Run(hubCtx) })
	feedCtx, stopFeed := context.WithCancel(context.Background())
	var feeds sync.WaitGroup
	feeds.Go(func() { s.feed.follow(feedCtx) })
	feeds.Go(func() { s.records.watch(feedCtx) })
	feeds.Go(func() { s.prepare(feedCtx) })
	feeds.Go(func() { s.reap(feedCtx) })
	feeds.Go(func() { l := s.l; l.FollowCharts(feedCtx, s.runs.Broadcast) })
	<-ctx.Done()
	s.feed.drain(context.Background(), 2*time.Second)
	stopFeed()
	feeds.Wait()
	stopHubs()
	wg.Wait()
}

// prepare loads the history of every run in progress into the hubs once
// the feed follows the log, so that a plain /ws client gets them whole;
// until then, requests wait (see waitReady).
func (s *Server) prepare(ctx context.Context) {
	for _, ch := range []chan struct{}{s.feed.started, s.records.ready} {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
	for _, r := range s.records.all() {
		if runlog.Active(r.State) {
			if err := s.feed.ensure(ctx, r.ID); err != nil {
				s.log.Warn().Err(err).Str("run_id", r.ID).Msg("ws: loading a run's history")
			}
		}
	}
	close(s.ready)
}

// waitReady holds a request until prepare is done, or answers 503.
func (s *Server) waitReady(w http.ResponseWriter, r *http.Request) bool {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.ready:
		return true
	case <-r.Context().Done():
	case <-t.C:
	}
	writeError(w, http.StatusServiceUnavailable, "the server is still connecting to its run log; try again shortly")
	return false
}

// reap repairs, every Lease, runs whose job message was lost, and forgets
// the ended runs beyond the log's KeepRuns (runlog.Log.Reap, Prune).
func (s *Server) reap(ctx context.Context) {
	t := time.NewTicker(s.l.Config().Lease)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			recs := s.records.all()
			s.l.Reap(ctx, recs)
			s.l.Prune(ctx, recs)
		}
	}
}

// Handler routes every endpoint through authentication, but the dashboard's
// static page and assets (package web): they hold no data, and a browser
// loading them cannot attach the token; the page passes it on to the API;
// and /healthz, a readiness probe that says only ok.
func (s *Server) Handler() http.Handler {
	root := http.NewServeMux()
	root.Handle("GET "+web.Path, web.Handler())
	root.Handle("GET "+web.Path+"/", web.Handler())
	root.HandleFunc("GET /healthz", s.healthz)
	mux := http.NewServeMux()
	root.Handle("/", s.authenticate(mux))
	mux.HandleFunc("GET /{$}", s.health)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /ws", s.limitConns(s.serveRuns))
	mux.HandleFunc("GET /ws/predict", s.limitConns(s.pipeline.serve))
	mux.HandleFunc("GET /api/datasets", s.listDatasets) // datasets.go
	mux.HandleFunc("POST /api/datasets", s.uploadDataset)
	mux.HandleFunc("GET /api/datasets/{name}", s.getDataset)
	mux.HandleFunc("PUT /api/datasets/{name}", s.putDataset)
	mux.HandleFunc("DELETE /api/datasets/{name}", s.deleteDataset)
	mux.HandleFunc("POST /api/datasets/{name}/rows", s.appendRows)
	mux.HandleFunc("POST /api/runs", s.jsonOnly(s.startRun))
	mux.HandleFunc("GET /api/runs", s.listRuns)
	mux.HandleFunc("GET /api/runs/{id}", s.getRun)
	mux.HandleFunc("DELETE /api/runs/{id}", s.cancelRun)
	mux.HandleFunc("GET /api/agents", s.listAgents)
	mux.HandleFunc("GET /api/runs/{id}/reports", s.listReports)
	mux.HandleFunc("GET /api/runs/{id}/reports/{path...}", s.getReport)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics)
	}
	return s.guard(root) // guard.go: Host, Origin, CORS
}

// healthz is the readiness probe of a load balancer: 200 once the replica
// follows the log and has loaded the runs in progress, else 503. It says
// nothing else, so it needs no token.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.ready:
		w.Write([]byte("ok\n"))
	default:
		http.Error(w, "connecting to the run log", http.StatusServiceUnavailable)
	}
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
		if n+s.runs.Clients()+s.forecasts.Clients() > s.cfg.MaxConnections {
			writeError(w, http.StatusServiceUnavailable, "too many connections; try again later")
			return
		}
		h(w, r)
	}
}

// serveRuns is /ws: every run in progress, or ?run=ID alone, from where
// ?since= says the client stopped.
func (s *Server) serveRuns(w http.ResponseWriter, r *http.Request) {
	if !s.waitReady(w, r) {
		return
	}
	q := r.URL.Query()
	var sub hub.Subscription
	switch q.Get("deltas") {
	case "", "none":
	case "final":
		sub.Deltas = hub.DeltasFinal
	case "all":
		sub.Deltas = hub.DeltasAll
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("deltas: want none, final or all, got %q", q.Get("deltas")))
		return
	}
	since, err := parseSince(q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	need := slices.Collect(maps.Keys(since))
	if id := q.Get("run"); id != "" || q.Has("run") {
		rec, err := s.records.get(r.Context(), id)
		if err != nil || rec.Lane != runlog.LaneTrain {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q: GET /api/runs lists them", id))
			return
		}
		sub.Stream = id
		need = append(need, id)
	}
	sub.Since = since
	for _, id := range need {
		if rec, err := s.records.get(r.Context(), id); err != nil || rec.Lane != runlog.LaneTrain {
			delete(since, id) // a run pruned or never known: nothing to resume
			continue
		}
		if err := s.feed.ensure(r.Context(), id); err != nil {
			writeError(w, http.StatusServiceUnavailable, "reading the run's history: "+err.Error())
			return
		}
	}
	s.runs.Serve(w, r, sub)
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
	QueuedRuns    int             `json:"queued_runs"`
	Agents        int             `json:"agents"`
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
	ds, err := datasets.Embedded().List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	agents, _ := s.l.Agents(r.Context())
	writeJSON(w, http.StatusOK, Health{
		Status: "ok", Service: "kairoscope", Version: s.cfg.Version, UptimeSeconds: time.Since(s.started).Seconds(),
		Devices: s.cfg.Devices, Datasets: ds, ActiveRuns: s.records.count(runlog.LaneTrain, ""),
		QueuedRuns: s.records.count(runlog.LaneTrain, runlog.StateQueued), Agents: len(agents),
		Clients: s.runs.Clients() + s.forecasts.Clients(),
		Endpoints: []string{"GET /", "GET " + web.Path, "GET /ws?run=&since=&deltas=", "GET /ws/predict?dataset=&horizon=", "GET /api/datasets",
			"POST /api/datasets?name=", "GET /api/datasets/{name}?format=&since=", "PUT /api/datasets/{name}", "DELETE /api/datasets/{name}",
			"POST /api/datasets/{name}/rows", "POST /api/runs", "GET /api/runs", "GET /api/runs/{id}", "DELETE /api/runs/{id}", "GET /api/runs/{id}/reports", "GET /api/runs/{id}/reports/{path}", "GET /api/agents", "GET /metrics"},
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

func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	req, err := schema.DecodeRunRequest(r.Body, s.cfg.MaxBody)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Dataset == "" {
		req.Dataset = datasets.Default
	}
	if !s.allowJob(w, r, "runs") {
		return
	}
	rec, err := s.StartRun(r.Context(), req) // pins the dataset's current version
	switch {
	case badDataset(err), errors.Is(err, schema.ErrRunTooCostly):
		if errors.Is(err, schema.ErrRunTooCostly) {
			s.refuse("cost")
		}
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, runlog.ErrQueueFull):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, errNoAgent):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Location", "/api/runs/"+rec.ID)
		writeJSON(w, http.StatusAccepted, rec)
	}
}

// errNoAgent: no agent connected takes the device class a run asks for.
var errNoAgent = errors.New("no agent takes this device")

// StartRun queues req (already validated) as a run and returns its record.
func (s *Server) StartRun(ctx context.Context, req schema.RunRequest) (runlog.Record, error) {
	req.OnOOM = cmp.Or(req.OnOOM, s.cfg.OnOOM)
	device := cmp.Or(req.Device, s.cfg.Device)
	class := classOf(device)
	if class == runlog.ClassGPU {
		agents, err := s.l.Agents(ctx)
		if err != nil {
			return runlog.Record{}, err
		}
		if !runlog.Serves(agents, runlog.LaneTrain, class) {
			return runlog.Record{}, fmt.Errorf("%w: device gpu never falls back, and no agent with a GPU is connected "+
				"(start kairoscope agent on a GPU machine, install kairoscope-cuda beside kairoscope, or ask for device auto or cpu)", errNoAgent)
		}
	}
	if err := s.checkCost(req); err != nil { // limits.go
		return runlog.Record{}, err
	}
	id := runlog.NewID(runlog.RunPrefix)
	data, err := s.pinData(ctx, id, req.Dataset)
	if err != nil {
		return runlog.Record{}, err
	}
	rec := runlog.Record{ID: id, Lane: runlog.LaneTrain, Class: class, Request: &req, Device: device,
		// A study sends no trial's epochs, hence no deltas.
		Spec: worker.Spec{Run: &req, Data: data, PredictionDeltas: req.Kind != schema.RunKindTune}}
	rec, err = s.l.Submit(ctx, rec, s.cfg.MaxQueuedRuns)
	if err != nil {
		s.pins.release(id)
		return rec, err
	}
	s.records.submitted(rec)
	s.log.Info().Str("run_id", rec.ID).Str("dataset", req.Dataset).Str("device", device).Msg("run queued")
	return rec, nil
}

// pinData pins dataset name's current version for job id, until the job
// ends, and stores its bytes in the log's object store, where an agent on
// any machine finds them by hash.
func (s *Server) pinData(ctx context.Context, id, name string) (*worker.Data, error) {
	v, release, err := s.datasets.Pin(name)
	if err != nil {
		return nil, err
	}
	if v.Path != "" {
		b, err := os.ReadFile(v.Path)
		if err == nil {
			err = s.l.PutBlobOnce(ctx, runlog.DatasetBlob(v.Hash), b)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("keeping dataset %q for the job: %w", name, err)
		}
	}
	s.pins.hold(id, release)
	return specData(v), nil
}

// pins holds each job's dataset version until its record ends. A replica
// that restarts holds none: agents then read the version from the object
// store, and deleteDataset still refuses a dataset an active job uses.
type pins struct {
	mu   sync.Mutex
	held map[string]func() // by job ID
}

func (p *pins) hold(id string, release func()) {
	p.mu.Lock()
	p.held[id] = release
	p.mu.Unlock()
}

func (p *pins) release(id string) {
	p.mu.Lock()
	release := p.held[id]
	delete(p.held, id)
	p.mu.Unlock()
	if release != nil {
		release()
	}
}

// logCharts announces appends to every replica through the log's NATS.
type logCharts struct{ l *runlog.Log }

func (c logCharts) Broadcast(msg []byte) { c.l.PublishChart(msg) }

// inUse lists the active jobs that read dataset name.
func (s *Server) inUse(name string) []string {
	var ids []string
	for _, r := range s.records.all() {
		if runlog.Active(r.State) && r.Spec.Dataset() == name {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// classOf maps a requested device to the queue that serves it.
func classOf(device string) string {
	switch device {
	case schema.DeviceGPU:
		return runlog.ClassGPU
	case schema.DeviceCPU:
		return runlog.ClassCPU
	}
	return runlog.ClassAny
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	if !s.waitReady(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.records.list(runlog.LaneTrain))
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	rec, err := s.records.get(r.Context(), r.PathValue("id"))
	if err != nil || rec.Lane != runlog.LaneTrain {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if rec, err := s.records.get(r.Context(), id); err != nil || rec.Lane != runlog.LaneTrain {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q", id))
		return
	}
	rec, err := s.l.Cancel(r.Context(), id)
	switch {
	case errNotFound(err):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, runlog.ErrEnded):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "run": rec})
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, rec)
	}
}

// listReports is GET /api/runs/{id}/reports: the files the run wrote, as
// its agent stored them in the log (any replica serves them).
func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.records.get(r.Context(), id); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no run %q", id))
		return
	}
	files, err := s.l.ListBlobs(r.Context(), runlog.ReportBlob(id, ""))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if files == nil {
		files = []runlog.Blob{}
	}
	writeJSON(w, http.StatusOK, files)
}

// getReport is GET /api/runs/{id}/reports/{path}: one of those files.
func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	id, p := r.PathValue("id"), r.PathValue("path")
	if _, err := s.records.get(r.Context(), id); err != nil || p == "" || strings.Contains(p, "..") {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no report %q of run %q", p, id))
		return
	}
	var buf bytes.Buffer
	if err := s.l.GetBlob(r.Context(), runlog.ReportBlob(id, p), &buf); errors.Is(err, runlog.ErrNoBlob) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no report %q of run %q: GET /api/runs/%s/reports lists them", p, id, id))
		return
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	switch {
	case strings.HasSuffix(p, ".csv"):
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	case strings.HasSuffix(p, ".json"):
		w.Header().Set("Content-Type", "application/json")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Write(buf.Bytes())
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	agents, err := s.l.Agents(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if agents == nil {
		agents = []runlog.AgentInfo{}
	}
	writeJSON(w, http.StatusOK, agents)
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
