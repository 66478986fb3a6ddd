package ws

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// pipeline serves /ws/predict: on connect it forecasts the dataset
// (?dataset=, default the embedded affluence series) and streams the seed's
// status messages. A forecast is a job of the forecast lane: any agent runs
// it, its messages go through the run log like a run's. Clients of this
// replica asking for the same dataset and horizon while a forecast is
// queued or running share it.
//
// A forecast all of whose clients on this replica have left is cancelled
// after Config.ForecastGrace (abandon.go), unless one has rejoined it.
type pipeline struct {
	s *Server

	mu       sync.Mutex
	inflight map[string]string // dataset/hash/horizon → forecast ID, queued or running
	clients  map[string]int    // forecast ID → its clients here, connected or connecting
	keys     map[string]string // forecast ID → its inflight key
}

func newPipeline(s *Server) *pipeline {
	return &pipeline{s: s, inflight: map[string]string{}, clients: map[string]int{}, keys: map[string]string{}}
}

// serve joins the client to the forecast of its dataset and horizon,
// queueing one when none is under way.
func (p *pipeline) serve(w http.ResponseWriter, r *http.Request) {
	s := p.s
	// Nothing is queued for a request that cannot become a WebSocket: a
	// plain GET (an <img> of any page) or a refused Origin.
	if err := upgradeRequest(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.cfg.Hub.CheckOrigin(r) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("Origin %q is not allowed", r.Header.Get("Origin")))
		return
	}
	if !s.waitReady(w, r) {
		return
	}
	q := r.URL.Query()
	name := q.Get("dataset")
	if name == "" {
		name = datasets.Default
	}
	horizon := s.cfg.Horizon
	if h := q.Get("horizon"); h != "" {
		v, err := strconv.Atoi(h)
		if err != nil || v < 1 || v > s.cfg.MaxHorizon {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("horizon must be a whole number of days from 1 to %d, got %q", s.cfg.MaxHorizon, h))
			return
		}
		horizon = v
	}
	// Clients share a forecast of the same bytes only: one asked for after
	// an append forecasts from the new rows.
	info, err := s.datasets.Get(name)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := fmt.Sprintf("%s/%s/%d", name, info.Hash, horizon)

	p.mu.Lock()
	id, shared := p.inflight[key]
	if shared {
		if rec, err := s.records.get(r.Context(), id); err != nil || runlog.Ended(rec.State) {
			shared = false
		}
	}
	if !shared {
		if !s.allowJob(w, r, "forecasts") { // limits.go
			p.mu.Unlock()
			return
		}
		id = runlog.NewID(runlog.ForecastPrefix)
		data, err := s.pinData(r.Context(), id, name)
		if err != nil {
			p.mu.Unlock()
			status := http.StatusInternalServerError
			if badDataset(err) {
				status = http.StatusBadRequest
			}
			writeError(w, status, err.Error())
			return
		}
		rec := runlog.Record{ID: id, Lane: runlog.LaneForecast, Class: classOf(s.cfg.Device),
			Device: s.cfg.Device, Spec: worker.Spec{Forecast: &worker.Forecast{Dataset: name, Horizon: horizon}, Data: data}}
		rec, err = s.l.Submit(r.Context(), rec, s.cfg.MaxQueuedForecasts)
		if err != nil {
			s.pins.release(id)
			p.mu.Unlock()
			if errors.Is(err, runlog.ErrQueueFull) {
				writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the prediction pipeline is busy (%d forecasts queued); try again later", s.cfg.MaxQueuedForecasts))
			} else {
				writeError(w, http.StatusInternalServerError, err.Error())
			}
			return
		}
		s.records.submitted(rec)
		p.inflight[key] = id
		p.keys[id] = key
	}
	p.clients[id]++
	p.mu.Unlock()

	sub := hub.Subscription{Stream: id, Deltas: hub.DeltasAll, Left: func() { p.left(id) }}
	if ahead := p.ahead(id); ahead > 0 {
		b, _ := json.Marshal(&schema.PredictMessage{Status: schema.StatusMessage,
			Message: fmt.Sprintf("En file d'attente : %d prédiction(s) avant celle-ci...", ahead)})
		sub.Prelude = [][]byte{b}
	}
	if err := s.feed.ensure(r.Context(), id); err != nil {
		p.left(id)
		writeError(w, http.StatusServiceUnavailable, "reading the forecast's history: "+err.Error())
		return
	}
	s.log.Debug().Str("forecast", id).Bool("shared", shared).Msg("ws: forecast client joined")
	s.forecasts.Serve(w, r, sub)
}

// ahead counts the forecasts queued before forecast id.
func (p *pipeline) ahead(id string) int {
	recs := p.s.records.list(runlog.LaneForecast)
	n := 0
	for _, r := range recs {
		if r.ID == id {
			break
		}
		if r.State == runlog.StateQueued {
			n++
		}
	}
	return n
}
