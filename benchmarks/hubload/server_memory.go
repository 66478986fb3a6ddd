package hubload

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// memoryServer is the in-memory path: the hub of package ws/hub with its
// default Config, fed directly from the worker's messages (a feed), with
// no log in between. /ws subscribes every client as ws.Server subscribes
// a plain /ws client: every stream, no prediction_delta. A message is
// published when the feed hands it to Hub.Append. Nothing else of
// ws.Server is there (no auth, limits or REST): this is the hub alone.
type memoryServer struct {
	h    *hub.Hub
	feed *feed
	stop func()

	mu   sync.Mutex
	pubs map[string]Published
}

var _ hubServer = (*memoryServer)(nil)

func newMemoryServer(workerPath, reports string, log zerolog.Logger) *memoryServer {
	s := &memoryServer{h: hub.NewHub(hub.Config{}, log), feed: newFeed(workerPath, reports, log), pubs: map[string]Published{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.h.Run(ctx); close(done) }()
	s.stop = func() { cancel(); <-done }
	return s
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
	info, pub, err := s.feed.run(ctx, id, req, true, s.h.Append)
	s.mu.Lock()
	s.pubs[id] = pub
	s.mu.Unlock()
	return info, err
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
