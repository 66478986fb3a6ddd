package hubload

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// memoryServer is the in-memory path: the hub of package ws/hub with its
// default Config, fed from the worker's messages with no log in between.
// It reads them from `hubload feed` (Feed), the FastAPI peer's source too,
// and appends each to the hub as it comes. /ws subscribes every client as
// ws.Server subscribes a plain /ws client: every stream, no
// prediction_delta. Nothing else of ws.Server is there (no auth, limits or
// REST): this is the hub alone.
type memoryServer struct {
	h       *hub.Hub
	bin     string // this hubload binary, whose feed command trains
	worker  string
	reports string
	stop    func()

	mu   sync.Mutex
	pubs map[string]Published
}

var _ hubServer = (*memoryServer)(nil)

func newMemoryServer(workerPath, reports string, log zerolog.Logger) (*memoryServer, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("hubload server: finding the hubload binary for the feed: %w", err)
	}
	s := &memoryServer{h: hub.NewHub(hub.Config{}, log), bin: bin, worker: workerPath, reports: reports, pubs: map[string]Published{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.h.Run(ctx); close(done) }()
	s.stop = func() { cancel(); <-done }
	return s, nil
}

func (s *memoryServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { s.h.Serve(w, r, hub.Subscription{}) })
	return mux
}

func (s *memoryServer) clients(context.Context) (int, error) { return s.h.Clients(), nil }

// train runs req with a prediction_delta after every epoch, as ws.Server
// asks of a training job; the hub sends them to no plain client.
func (s *memoryServer) train(ctx context.Context, req schema.RunRequest) (RunInfo, error) {
	id := runlog.NewID(runlog.RunPrefix)
	var seq uint64
	res, err := runFeed(ctx, s.bin, s.worker, s.reports, id, req, true, func(line []byte) {
		seq++
		_, terminal := messageType(line)
		s.h.Append(hub.Message{Stream: id, Seq: seq, Payload: line, Terminal: terminal}) // Append copies line
	})
	s.mu.Lock()
	s.pubs[id] = res.Published
	s.mu.Unlock()
	return RunInfo{ID: id, TrainS: res.Run.TrainS}, err
}

// published is known once train has returned: Append was called for every
// message by then.
func (s *memoryServer) published(_ context.Context, id string) (Published, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pubs[id]
	if !ok {
		return p, fmt.Errorf("no run %q", id)
	}
	return p, nil
}

func (s *memoryServer) close() { s.stop() }
