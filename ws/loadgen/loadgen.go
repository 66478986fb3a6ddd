package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MaxClients bounds the connections of one load.
const MaxClients = 10000

// Config is one load.
type Config struct {
	Kairoscope string   // the kairoscope binary to serve with
	ServeArgs  []string // more serve flags
	Clients    int      // healthy /ws clients, each parsing every frame
	Slow       int      // /ws?deltas=all clients that stop reading (a stalled page, a dead link) until the run has ended
	Run        string   // the run request, JSON (default DefaultRun)
	Baseline   bool     // first time the same run with no client, for the slowdown
	Predict    int      // /ws/predict clients, after the run
	Forecasts  int      // distinct forecasts they ask for (horizons 1..Forecasts; default 3)
	Timeout    time.Duration
}

// DefaultRun is a real run long enough to overflow a stalled client's
// queue: 20 folds of 40 epochs without early stopping, about 1,700
// messages on bike.
const DefaultRun = `{"dataset":"bike","folds":20,"epochs":40,"patience":0}`

// Result is what a load measured and checked.
type Result struct {
	Clients, Slow int
	Messages      int     // seqs of the run
	PerClient     int     // of them, those a plain /ws client is sent (all but prediction_delta)
	RunSeconds    float64 // from POST to the first client's terminal message
	BaseSeconds   float64 `json:",omitempty"` // the same run with no client (Baseline)

	Complete     int   // healthy clients with every seq exactly once, in order
	Incomplete   int   // healthy clients missing a seq, or with a duplicate or misordered one
	Frames       int64 // frames the healthy clients parsed
	SlowClosed   int   // slow clients that received the close frame 4008
	SlowCut      int   // slow clients whose connection the server cut without a close frame (their socket was full)
	SlowOther    []int `json:",omitempty"` // other close codes of slow clients, -1 still open (a failure)
	SlowCounted  int   // clients closed as slow by the server's count (/metrics kairoscope_ws_slow_closes_total)
	MissingRef   int   // receipts whose append time was not seen
	RefLate      int   // seqs a client received before the generator saw them appended: the first receipt is their reference
	LatencyP50Ms float64
	LatencyP90Ms float64
	LatencyP99Ms float64
	LatencyMaxMs float64

	// CPU seconds, user + system, from the run's start to its last client's
	// end: the server (hub, log, agent), its worker, this generator's
	// clients. All share the machine's cores.
	ServerCPU, WorkerCPU, ClientsCPU float64
	BaseServerCPU, BaseWorkerCPU     float64 `json:",omitempty"` // the same for the run with no client

	RSSBefore, RSSIdle, RSSPeak int64   // the server's resident memory: no client, clients idle, peak of the run
	BytesPerConnIdle            float64 // (RSSIdle - RSSBefore) / connections
	BytesPerConnRun             float64 // (RSSPeak - RSSBefore) / connections

	Predict        int         // /ws/predict clients
	PredictOutputs int         // of them, with an output and a normal close
	PredictErrors  int         // with an error message (the forecast failed)
	PredictRefused map[int]int `json:",omitempty"` // HTTP status → clients refused before the upgrade
	PredictBroken  int         // with neither: a dropped connection (a failure)
	ForecastsRun   int         // distinct forecasts the clients joined
	SharedOK       bool        // clients asking the same horizon joined one forecast

	ServerHealthy bool // GET /healthz 200 after the load
	ServerExit    string
}

// Run performs the load and returns what it measured. An error means the
// load could not be carried out; what it found wrong is in Result, see
// Result.Check.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Clients < 1 || cfg.Clients+cfg.Slow+cfg.Predict > MaxClients || cfg.Slow < 0 || cfg.Predict < 0 {
		return nil, fmt.Errorf("loadgen: want 1 to %d connections in all, got %d healthy, %d slow, %d predict", MaxClients, cfg.Clients, cfg.Slow, cfg.Predict)
	}
	if cfg.Run == "" {
		cfg.Run = DefaultRun
	}
	if cfg.Forecasts <= 0 {
		cfg.Forecasts = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	conns := cfg.Clients + cfg.Slow + cfg.Predict
	args := append([]string{"--max-connections", strconv.Itoa(conns + 100), "--run-burst", "1000", "--runs-per-minute", "1000"}, cfg.ServeArgs...)
	srv, err := startServer(ctx, cfg.Kairoscope, args, time.Minute)
	if err != nil {
		return nil, err
	}
	res := &Result{Clients: cfg.Clients, Slow: cfg.Slow, Predict: cfg.Predict, SharedOK: true}
	defer func() {
		if res.ServerExit == "" {
			srv.kill()
		}
	}()
	epoch := time.Now()
	ref, err := subscribe(srv.nats, epoch)
	if err != nil {
		return nil, err
	}
	defer ref.nc.Close()

	if cfg.Baseline {
		s0, w0 := srv.cpu()
		t0 := time.Now()
		if err := runAlone(ctx, srv, cfg.Run); err != nil {
			return nil, fmt.Errorf("the baseline run: %w", err)
		}
		res.BaseSeconds = time.Since(t0).Seconds()
		time.Sleep(500 * time.Millisecond) // the worker reaped
		s1, w1 := srv.cpu()
		res.BaseServerCPU, res.BaseWorkerCPU = s1-s0, w1-w0
	}

	time.Sleep(time.Second) // let the server settle before the baseline
	res.RSSBefore = srv.rss()
	url := "ws://" + srv.addr + "/ws"
	healthy, err := dialAll(ctx, url, cfg.Clients, false)
	if err != nil {
		return nil, fmt.Errorf("dialing the healthy clients: %w", err)
	}
	defer closeAll(healthy)
	var slow []*websocket.Conn
	if cfg.Slow > 0 {
		// They ask for every prediction_delta with its rows, as a dashboard
		// may: far more than their queue and socket buffers hold.
		if slow, err = dialAll(ctx, url+"?deltas=all", cfg.Slow, true); err != nil {
			return nil, fmt.Errorf("dialing the slow clients: %w", err)
		}
		defer closeAll(slow)
	}
	time.Sleep(2 * time.Second) // idle connections settle
	res.RSSIdle = srv.rss()
	res.BytesPerConnIdle = float64(res.RSSIdle-res.RSSBefore) / float64(cfg.Clients+cfg.Slow)

	clients := make([]*wsClient, len(healthy))
	var readers sync.WaitGroup
	for i, c := range healthy {
		clients[i] = &wsClient{conn: c}
		readers.Go(func() { clients[i].read(epoch, deadline) })
	}
	stopRSS := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		p := res.RSSIdle
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				peak <- p
				return
			case <-t.C:
				p = max(p, srv.rss())
			}
		}
	}()
	s0, w0 := srv.cpu()
	c0 := ownCPU()
	t0 := time.Now()
	run, err := srv.postRun(cfg.Run)
	if err != nil {
		close(stopRSS)
		return nil, err
	}
	readers.Wait()
	res.ClientsCPU = ownCPU() - c0
	time.Sleep(500 * time.Millisecond) // the worker reaped
	s1, w1 := srv.cpu()
	res.ServerCPU, res.WorkerCPU = s1-s0, w1-w0
	close(stopRSS)
	res.RSSPeak = <-peak
	res.BytesPerConnRun = float64(res.RSSPeak-res.RSSBefore) / float64(cfg.Clients+cfg.Slow)
	for _, c := range clients {
		if c.done && (res.RunSeconds == 0 || c.doneAt.Sub(t0).Seconds() < res.RunSeconds) {
			res.RunSeconds = c.doneAt.Sub(t0).Seconds()
		}
	}
	time.Sleep(200 * time.Millisecond) // the last appends' references
	res.check(clients, ref, run)

	// Each stalled client must have been closed during the run, and counted.
	codes := make([]int, len(slow))
	var drains sync.WaitGroup
	for i, c := range slow {
		drains.Go(func() { codes[i] = drainSlow(c, time.Now().Add(10*time.Second)) })
	}
	drains.Wait()
	for _, code := range codes {
		switch code {
		case 4008:
			res.SlowClosed++
		case 0:
			res.SlowCut++
		default:
			res.SlowOther = append(res.SlowOther, code)
		}
	}
	res.SlowCounted = srv.slowCloses()

	if cfg.Predict > 0 {
		res.predict(ctx, srv.addr, cfg.Predict, cfg.Forecasts, deadline)
	}
	res.ServerHealthy = srv.healthy()
	res.ServerExit = "exit 0"
	if err := srv.stop(30 * time.Second); err != nil {
		res.ServerExit = err.Error()
	}
	return res, nil
}

// runAlone runs the request with no client but a reader of its end.
func runAlone(ctx context.Context, srv *server, body string) error {
	c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+srv.addr+"/ws", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := srv.postRun(body); err != nil {
		return err
	}
	d, _ := ctx.Deadline()
	w := &wsClient{conn: c}
	w.read(time.Now(), d)
	if !w.done {
		return fmt.Errorf("no end of the run: %v", w.err)
	}
	return nil
}

// check counts the clients that got the run whole (every seq a plain
// client is sent: all but the prediction_delta ones), and the latencies.
func (r *Result) check(clients []*wsClient, refs *reference, run string) {
	ref, deltas := refs.of(run)
	n := uint64(len(ref))
	r.Messages = int(n)
	r.PerClient = int(n) - len(deltas)
	// A message's reference time is when the generator's NATS subscription
	// saw it appended, or the first client's receipt if that came sooner
	// (the subscription shares the generator's goroutines with the clients).
	first := make(map[uint64]uint32, len(ref))
	for seq, at := range ref {
		first[seq] = at
	}
	for _, c := range clients {
		for seq, at := range c.recv {
			if f, ok := first[uint64(seq)]; at != 0 && ok && at < f {
				first[uint64(seq)] = at
			}
		}
	}
	for seq, at := range ref {
		if first[seq] < at {
			r.RefLate++
		}
	}
	var lat []uint32 // µs
	for _, c := range clients {
		r.Frames += int64(c.frames)
		whole := c.done && c.last == n && c.dups == 0 && c.order == 0 && c.others == 0 && c.err == nil && c.run == run
		for seq := uint64(1); seq <= n && seq < uint64(len(c.recv)); seq++ {
			if c.recv[seq] == 0 {
				if !deltas[seq] {
					whole = false
				}
				continue
			}
			if deltas[seq] {
				whole = false // sent what it did not ask for
			}
			if at, ok := first[seq]; ok {
				lat = append(lat, c.recv[seq]-at)
			} else {
				r.MissingRef++
			}
		}
		if uint64(len(c.recv)) <= n {
			whole = false
		}
		if whole {
			r.Complete++
		} else {
			r.Incomplete++
		}
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)]) / 1000
	}
	r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyMaxMs = q(0.5), q(0.9), q(0.99), q(1)
}

// predict runs n /ws/predict clients at once over k horizons.
func (r *Result) predict(ctx context.Context, addr string, n, k int, deadline time.Time) {
	out := make([]predictResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i] = predict(ctx, fmt.Sprintf("ws://%s/ws/predict?dataset=bike&horizon=%d", addr, 1+i%k), deadline)
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	byHorizon := map[int]map[string]bool{}
	for i, p := range out {
		switch {
		case p.status != http.StatusSwitchingProtocols && p.status != 0:
			if r.PredictRefused == nil {
				r.PredictRefused = map[int]int{}
			}
			r.PredictRefused[p.status]++
			continue
		case p.output && (p.closeErr == nil || websocket.IsCloseError(p.closeErr, websocket.CloseNormalClosure)):
			r.PredictOutputs++
		case p.errMsg != "":
			r.PredictErrors++
		default:
			r.PredictBroken++
		}
		if p.id != "" {
			ids[p.id] = true
			h := 1 + i%k
			if byHorizon[h] == nil {
				byHorizon[h] = map[string]bool{}
			}
			byHorizon[h][p.id] = true
		}
	}
	r.ForecastsRun = len(ids)
	for _, s := range byHorizon {
		// A horizon's clients share one forecast, unless one ended before
		// another client of it connected (then it starts a new one).
		if len(s) > 1 && len(ids) > k {
			r.SharedOK = false
		}
	}
}

// Check returns what the load found wrong, nil when nothing.
func (r *Result) Check() error {
	var errs []error
	if r.Messages == 0 {
		errs = append(errs, errors.New("no client saw the run end"))
	}
	if r.Incomplete > 0 {
		errs = append(errs, fmt.Errorf("%d of %d healthy clients did not get every seq exactly once, in order", r.Incomplete, r.Clients))
	}
	if r.SlowCounted != r.Slow || r.SlowClosed+r.SlowCut != r.Slow {
		errs = append(errs, fmt.Errorf("of %d slow clients the server closed %d as slow; %d got the close frame 4008, %d were cut, others ended with %v",
			r.Slow, r.SlowCounted, r.SlowClosed, r.SlowCut, r.SlowOther))
	}
	if r.PredictBroken > 0 || r.PredictErrors > 0 {
		errs = append(errs, fmt.Errorf("%d /ws/predict clients lost their connection, %d got an error", r.PredictBroken, r.PredictErrors))
	}
	if r.Predict > 0 && r.PredictOutputs == 0 {
		errs = append(errs, errors.New("no /ws/predict client got an output"))
	}
	for status := range r.PredictRefused {
		if status != http.StatusServiceUnavailable {
			errs = append(errs, fmt.Errorf("/ws/predict clients refused with %d", status))
		}
	}
	if !r.SharedOK {
		errs = append(errs, errors.New("clients of one forecast did not share it"))
	}
	if !r.ServerHealthy || r.ServerExit != "exit 0" {
		errs = append(errs, fmt.Errorf("the server after the load: healthy %v, %s", r.ServerHealthy, r.ServerExit))
	}
	return errors.Join(errs...)
}
