package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// PredictConfig sizes the prediction pipeline.
type PredictConfig struct {
	Device     string // auto, cpu or gpu
	MaxQueued  int    // forecasts waiting for the pipeline (default 8); more: HTTP 503 before upgrading
	Horizon    int    // days forecast when the client names none (default 30)
	MaxHorizon int    // largest ?horizon= (default 365)
}

// Pipeline serves /ws/predict: on connect it forecasts the dataset
// (?dataset=, default the embedded affluence series) and streams the seed's
// status messages. Clients asking for the same dataset and horizon while a
// forecast is queued or running share it; forecasts run one at a time, in
// order, from a bounded queue.
type Pipeline struct {
	cfg   PredictConfig
	jobs  Jobs
	log   zerolog.Logger
	hub   *Hub // one "run" per forecast; each client subscribes to its own
	queue chan *forecast

	mu       sync.Mutex
	inflight map[string]*forecast // by dataset and horizon, queued or running
}

type forecast struct {
	id, key string
	spec    worker.Spec
}

// NewPipeline makes the pipeline; Run starts it.
func NewPipeline(cfg PredictConfig, wsCfg Config, jobs Jobs, log zerolog.Logger) *Pipeline {
	if cfg.MaxQueued < 1 {
		cfg.MaxQueued = 8
	}
	if cfg.Horizon < 1 {
		cfg.Horizon = 30
	}
	if cfg.MaxHorizon < 1 {
		cfg.MaxHorizon = 365
	}
	if cfg.Device == "" {
		cfg.Device = worker.DeviceAuto
	}
	return &Pipeline{cfg: cfg, jobs: jobs, log: log, hub: NewHub(wsCfg, log),
		queue: make(chan *forecast, cfg.MaxQueued), inflight: map[string]*forecast{}}
}

// Clients counts the connected /ws/predict clients.
func (p *Pipeline) Clients() int { return p.hub.Clients() }

// Run forecasts queued jobs one at a time until ctx is done; the forecast
// under way is cancelled, queued ones end with an error message, and then
// the pipeline's clients are closed.
func (p *Pipeline) Run(ctx context.Context) {
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { p.hub.Run(hubCtx); close(hubDone) }()
	defer func() { stopHub(); <-hubDone }()
	for {
		select {
		case f := <-p.queue:
			p.execute(ctx, f)
		case <-ctx.Done():
			for {
				select {
				case f := <-p.queue:
					p.finish(f, "le serveur s'arrête : server shutting down")
				default:
					return
				}
			}
		}
	}
}

func (p *Pipeline) execute(ctx context.Context, f *forecast) {
	log := p.log.With().Str("forecast", f.id).Str("key", f.key).Logger()
	log.Info().Msg("forecast started")
	ended := false
	err := p.jobs.Run(ctx, f.spec, p.cfg.Device, func(msg []byte) {
		var s struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(msg, &s) == nil && (s.Status == schema.StatusOutput || s.Status == schema.StatusError) {
			ended = true
		}
		p.hub.Publish(f.id, msg)
	})
	switch {
	case ended:
		p.finish(f, "")
	case ctx.Err() != nil:
		p.finish(f, "le serveur s'arrête : server shutting down")
	case err != nil:
		p.finish(f, "la prédiction a échoué : "+err.Error())
	default:
		p.finish(f, "la prédiction s'est terminée sans résultat")
	}
	log.Info().Err(err).Msg("forecast ended")
}

// finish publishes a final error when errText is set, closes the
// forecast's clients once they have every message, and lets a new client
// start a fresh forecast.
func (p *Pipeline) finish(f *forecast, errText string) {
	if errText != "" {
		b, _ := json.Marshal(&schema.PredictError{Status: schema.StatusError, Message: errText})
		p.hub.Publish(f.id, b)
	}
	p.mu.Lock()
	delete(p.inflight, f.key)
	p.mu.Unlock()
	p.hub.CloseRun(f.id)
	// A client that looked the forecast up just before it ended still joins
	// it and gets the whole history; after a minute nobody can.
	time.AfterFunc(time.Minute, func() { p.hub.Forget(f.id) })
}

// ServeWS joins the client to the forecast of its dataset and horizon,
// queueing one when none is under way.
func (p *Pipeline) ServeWS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("dataset")
	if name == "" {
		name = datasets.Default
	}
	if _, err := datasets.Load(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	horizon := p.cfg.Horizon
	if h := q.Get("horizon"); h != "" {
		v, err := strconv.Atoi(h)
		if err != nil || v < 1 || v > p.cfg.MaxHorizon {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("horizon must be a whole number of days from 1 to %d, got %q", p.cfg.MaxHorizon, h))
			return
		}
		horizon = v
	}
	key := fmt.Sprintf("%s/%d", name, horizon)

	p.mu.Lock()
	f, shared := p.inflight[key]
	if !shared {
		f = &forecast{id: "forecast_" + newID()[4:], key: key,
			spec: worker.Spec{Forecast: &worker.Forecast{Dataset: name, Horizon: horizon}}}
		ahead := len(p.queue)
		select {
		case p.queue <- f:
			p.inflight[key] = f
			if ahead > 0 {
				b, _ := json.Marshal(&schema.PredictMessage{Status: schema.StatusMessage,
					Message: fmt.Sprintf("En file d'attente : %d prédiction(s) avant celle-ci...", ahead)})
				p.hub.Publish(f.id, b)
			}
		default:
			p.mu.Unlock()
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the prediction pipeline is busy (%d forecasts queued); try again later", cap(p.queue)))
			return
		}
	}
	p.mu.Unlock()
	p.log.Debug().Str("forecast", f.id).Bool("shared", shared).Msg("client joined")
	r2 := r.Clone(r.Context())
	q.Set("run", f.id)
	r2.URL.RawQuery = q.Encode()
	p.hub.ServeWS(w, r2)
}
