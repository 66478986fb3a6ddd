package deploy

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The guide's nats.conf, as each node reads it, makes a three-node
// JetStream cluster on which the run log works with replicated streams
// (--nats-replicas 3) and keeps working when a node goes away.
func TestThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster (about 10 s)")
	}
	const token = "s3cret"
	clientPorts, routePorts := make([]int, 3), make([]int, 3)
	for i := range 3 {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	servers := make([]*server.Server, 3)
	for i := range 3 {
		// The file as shipped, with the environment a node gets.
		t.Setenv("NATS_NODE", fmt.Sprintf("nats-%d", i+1))
		t.Setenv("NATS_STORE", filepath.Join(t.TempDir(), "js"))
		t.Setenv("NATS_TOKEN", token)
		opts, err := server.ProcessConfigFile("nats/nats.conf")
		if err != nil {
			t.Fatalf("nats.conf: %v", err)
		}
		if !opts.JetStream || opts.Cluster.Name != "kairoscope" || opts.MaxPayload != 8<<20 || opts.Authorization != token {
			t.Fatalf("nats.conf reads as jetstream %v, cluster %q, max payload %d, token set %v",
				opts.JetStream, opts.Cluster.Name, opts.MaxPayload, opts.Authorization != "")
		}
		// What the unit's --routes gives.
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		// On loopback: each node its own ports, no monitoring port.
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", clientPorts[i], 0
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePorts[i]
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers[i] = s
		t.Cleanup(s.Shutdown)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatal("a node did not start")
		}
	}
	var urls []string
	for _, p := range clientPorts {
		urls = append(urls, fmt.Sprintf("nats://%s@127.0.0.1:%d", token, p))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), runlog.ClientOptions("deploy-test")...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var l *runlog.Log
	for { // the cluster elects its JetStream leader first
		try, stop := context.WithTimeout(ctx, 5*time.Second)
		l, err = runlog.Open(try, nc, runlog.Config{Replicas: 3, Lease: 2 * time.Second}, zerolog.Nop())
		stop()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("opening the log with 3 replicas: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	req := schema.RunRequest{Dataset: "bike"}
	rec, err := l.Submit(ctx, runlog.Record{ID: runlog.NewID(runlog.RunPrefix), Lane: runlog.LaneTrain, Class: runlog.ClassAny,
		Request: &req, Spec: worker.Spec{Run: &req}}, 8)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := l.Taker(ctx, "agent", "1", []string{runlog.ClassAny})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	job, err := tk.Take(ctx, runlog.LaneTrain)
	if err != nil || job.Rec.ID != rec.ID {
		t.Fatalf("took %v: %v", job, err)
	}
	appendOne := func(n int) {
		t.Helper()
		for {
			err := job.Append(ctx, fmt.Appendf(nil, `{"type":"epoch_metrics","epoch":%d}`, n), false)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("append %d: %v", n, err)
			}
			time.Sleep(200 * time.Millisecond) // a new leader is being elected
		}
	}
	appendOne(0)
	// The node leading the run's events stream goes mid-run: R3 keeps a
	// quorum, another node leads, and the log goes on.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() string {
		t.Helper()
		for {
			s, err := js.Stream(ctx, "KAIRO_EVENTS")
			if err == nil {
				info, err := s.Info(ctx)
				if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
					return info.Cluster.Leader
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the events stream's leader: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	was := leader()
	for _, s := range servers {
		if s.Name() == was {
			s.Shutdown()
		}
	}
	appendOne(1)
	if now := leader(); now == was {
		t.Errorf("the events stream is still led by %s, which was shut down", was)
	}
	if _, err := job.Renew(ctx); err != nil {
		t.Fatalf("renewing with a node down: %v", err)
	}
	evs, err := l.History(ctx, rec.ID)
	if err != nil || len(evs) != 2 || evs[1].Seq != 2 {
		t.Fatalf("history with a node down: %d messages, %v", len(evs), err)
	}
	got, _, err := l.Get(ctx, rec.ID)
	if err != nil || got.State != runlog.StateRunning || got.Attempt != 1 {
		t.Fatalf("record %+v, %v", got, err)
	}
}
