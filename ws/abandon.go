package ws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kairoscope/kairoscope/runlog"
)

// left is told that one client of forecast id has gone. When it was the
// last one, the forecast is abandoned after ForecastGrace unless a client
// has joined it again by then (the dashboard retries a dropped forecast
// within 6 s).
func (p *pipeline) left(id string) {
	p.mu.Lock()
	p.clients[id]--
	last := p.clients[id] <= 0
	p.mu.Unlock()
	if last {
		time.AfterFunc(p.s.cfg.ForecastGrace, func() { p.abandon(id) })
	}
}

// abandon cancels forecast id if it still has no client here and has not
// ended: nobody would read its output, and it holds a forecast slot.
func (p *pipeline) abandon(id string) {
	p.mu.Lock()
	if p.clients[id] > 0 {
		p.mu.Unlock()
		return
	}
	delete(p.clients, id)
	if key := p.keys[id]; p.inflight[key] == id {
		delete(p.inflight, key)
	}
	delete(p.keys, id)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := p.s.records.get(ctx, id)
	if err != nil || runlog.Ended(rec.State) {
		return
	}
	if _, err := p.s.l.Cancel(ctx, id); err != nil && !errors.Is(err, runlog.ErrEnded) {
		p.s.log.Warn().Err(err).Str("forecast", id).Msg("ws: cancelling an abandoned forecast")
		return
	}
	p.s.log.Info().Str("forecast", id).Dur("grace", p.s.cfg.ForecastGrace).Msg("ws: forecast cancelled: its clients left")
}

// upgradeRequest says why r is not a WebSocket handshake, if it is not.
func upgradeRequest(r *http.Request) error {
	if !websocket.IsWebSocketUpgrade(r) || r.Header.Get("Sec-WebSocket-Key") == "" {
		return errors.New("this is a WebSocket endpoint: connect with a WebSocket client (Connection: Upgrade, Upgrade: websocket)")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); strings.TrimSpace(v) != "13" {
		return fmt.Errorf("unsupported WebSocket version %q: want 13", v)
	}
	return nil
}
