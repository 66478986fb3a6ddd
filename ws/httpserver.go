package ws

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// HTTPServer returns the http.Server of this replica's Handler with the
// Config's HTTP limits: a request must send its headers within
// ReadHeaderTimeout and its body within ReadTimeout, its answer must be
// written within WriteTimeout, and an idle keep-alive connection is closed
// after IdleTimeout. WebSockets are exempt once upgraded: the hub keeps
// their deadlines (hub.Config.WriteWait, PongWait).
func (s *Server) HTTPServer() *http.Server {
	c := s.cfg
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          newErrorLog(s.log),
	}
}

// Shutdown stops srv: it stops accepting, waits up to wait for the
// requests in progress, then closes the connections still open (a client
// sending its body slowly cannot hold the exit) and says how it went. It
// returns an error only when the listeners could not be closed.
func Shutdown(srv *http.Server, wait time.Duration, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Dur("wait", wait).Msg("requests still in progress at shutdown: closed their connections")
		err = srv.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
