package runlog

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process:
// what `kairoscope serve` runs without --nats, so nothing extra is installed
// and runs survive a restart (the store is a folder).
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream server storing under dir. listen ""
// accepts in-process connections only (Connect); "127.0.0.1:4222" also
// listens there, for agents of other processes.
func StartEmbedded(dir, listen string) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: store folder: %w", err)
	}
	opts := &server.Options{
		ServerName: "kairoscope-embedded",
		JetStream:  true,
		StoreDir:   filepath.Clean(dir),
		NoLog:      true,
		NoSigs:     true,
		// Large enough for every message the engine sends: a
		// prediction_delta part is under 500 KB.
		MaxPayload: 8 << 20,
	}
	if listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: the embedded server did not start within 30s (store %s)", dir)
	}
	return &Embedded{srv: srv}, nil
}

// Connect opens a client connection to the embedded server, in process.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", append(ClientOptions(name), nats.InProcessServer(e.srv))...)
}

// URL is the address it listens on, "" when in-process only.
func (e *Embedded) URL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server and waits for it; its store stays.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// ClientOptions are the connection options every replica and agent uses:
// reconnect for ever (the client's default gives up after about two
// minutes), and ping every 5 s so a half-open link shows within seconds
// rather than four minutes.
func ClientOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
	}
}
