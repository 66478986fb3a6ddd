//go:build linux

package main

// A deployment on loopback for the fault tests: a nats-server process,
// `kairoscope serve --nats` replicas (behind a balancer when there are
// several), and `kairoscope agent` processes running real workers.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// agentProc is one `kairoscope agent` child process.
type agentProc struct {
	*child
	name string
}

// startAgent starts `kairoscope agent --nats URL --agent-name name` with a
// data folder of its own, and waits until it takes jobs.
func startAgent(t *testing.T, url, name string, env []string, args ...string) *agentProc {
	t.Helper()
	args = append([]string{"agent", "--nats", url, "--agent-name", name, "--data-dir", t.TempDir()}, args...)
	c := startChild(t, "kairoscope agent "+name, env, args, func(line []byte) bool {
		var l struct{ Message string }
		return json.Unmarshal(line, &l) == nil && l.Message == "agent: taking jobs"
	})
	return &agentProc{child: c, name: name}
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// logEntry is one zerolog line of a child's log.
type logEntry map[string]any

func (e logEntry) str(k string) string { s, _ := e[k].(string); return s }

// entries returns the child's log lines with message msg.
func (c *child) entries(msg string) []logEntry {
	var out []logEntry
	for _, line := range strings.Split(c.logs.String(), "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.str("message") == msg {
			out = append(out, e)
		}
	}
	return out
}

// waitLogged waits up to d for a line with message msg that match accepts
// (nil: any), and returns it.
func (c *child) waitLogged(t *testing.T, d time.Duration, msg string, match func(logEntry) bool) logEntry {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, e := range c.entries(msg) {
			if match == nil || match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v; its log ends:\n%s", c.what, msg, d, c.logs.tail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterSpec says what a test deployment runs.
type clusterSpec struct {
	lease      time.Duration
	maxRetries int // --max-retries
	replicas   int // serve replicas, 1 by default; a balancer in front of 2 or more
	agents     []agentSpec
	// natsNodes3 runs a three-node NATS cluster (deploy/nats/nats.conf),
	// the log's streams and buckets replicated on all three; else one
	// nats-server.
	natsNodes3 bool
}

type agentSpec struct {
	name        string
	env         []string
	args        []string
	partitioned bool // connects through a link the test can cut
}

// cluster is a running deployment.
type cluster struct {
	spec    clusterSpec
	nats    *natsServer   // the one nats-server, or the cluster's first node
	nodes   []*natsServer // the cluster's nodes (natsNodes3)
	natsURL string        // what serve replicas and agents connect to
	serves  []*server
	names   []string // the replicas' names, s1, s2, …
	lb      *balancer
	agents  map[string]*agentProc
	links   map[string]*link // of the partitioned agents
	watch   *procWatch
	started time.Time
}

// startCluster starts spec on a fresh nats-server built from bin.
func startCluster(t *testing.T, bin string, spec clusterSpec, watchExtra ...string) *cluster {
	t.Helper()
	c := &cluster{spec: spec, agents: map[string]*agentProc{}, links: map[string]*link{}, started: time.Now()}
	c.watch = watchWorkers(t, watchExtra...)
	if spec.natsNodes3 {
		c.nodes, c.natsURL = startNATSCluster(t, bin)
		c.nats = c.nodes[0]
	} else {
		c.nats = startNATS(t, bin)
		c.natsURL = c.nats.URL()
	}
	spec.replicas = max(spec.replicas, 1)
	addrs := map[string]string{}
	for i := range spec.replicas {
		name := "s" + strconv.Itoa(i+1)
		s := startServerWith(t, nil, c.serveArgs()...)
		c.serves = append(c.serves, s)
		c.names = append(c.names, name)
		addrs[name] = s.addr
	}
	if spec.replicas > 1 {
		c.lb = startBalancer(t, c.names, addrs)
	}
	for _, a := range spec.agents {
		url := c.natsURL
		if a.partitioned {
			c.links[a.name] = startLink(t, strings.TrimPrefix(url, "nats://"))
			url = c.links[a.name].URL()
		}
		c.agents[a.name] = startAgent(t, url, a.name, a.env, a.args...)
	}
	t.Logf("cluster up in %v: nats-server %s ×%d, %d replicas, %d agents, lease %v", time.Since(c.started).Round(time.Millisecond),
		c.nats.version, max(len(c.nodes), 1), len(c.serves), len(c.agents), spec.lease)
	return c
}

func (c *cluster) serveArgs() []string {
	args := []string{"--nats", c.natsURL, "--local-agent=false", "--lease", c.spec.lease.String(),
		"--max-retries", strconv.Itoa(c.spec.maxRetries)}
	if c.spec.natsNodes3 {
		args = append(args, "--nats-replicas", "3")
	}
	return args
}

// restartReplica starts replica i again on the same NATS (after a kill)
// and points the balancer at it.
func (c *cluster) restartReplica(t *testing.T, i int) {
	t.Helper()
	s := startServerWith(t, nil, c.serveArgs()...)
	c.serves[i] = s
	if c.lb != nil {
		c.lb.setAddr(c.names[i], s.addr)
	}
}

// addr returns a function giving replica i's address, as it is at each
// call; -1 is the balancer (or the only replica).
func (c *cluster) addr(i int) func() string {
	return func() string {
		switch {
		case i >= 0:
			return c.serves[i].addr
		case c.lb != nil:
			return c.lb.Addr()
		}
		return c.serves[0].addr
	}
}

// startRun starts a run of body through the balancer (or the only
// replica) and follows all of it, deltas included, until attempt 1's first
// epoch: it returns the run, its follower, the agent running it and that
// agent's one live worker process.
func (c *cluster) startRun(t *testing.T, body string) (id string, full *follower, h *agentProc, workers []workerProc) {
	t.Helper()
	addr := c.addr(-1)
	id, _ = postRunTo(t, addr(), body)
	full = follow(t, "/ws?run&deltas=all", addr, "/ws?deltas=all&run="+id)
	h = c.holder(t, id)
	full.waitFor(t, id, firstEpochWait, "an epoch of attempt 1", isEpoch(1))
	// The agent's workers of earlier runs on this cluster are dead.
	workers = slices.DeleteFunc(c.watch.childrenOf(h.pid()), func(p workerProc) bool { return p.gone })
	if len(workers) != 1 {
		t.Fatalf("agent %s has %d workers, want 1: %+v", h.name, len(workers), workers)
	}
	return id, full, h, workers
}

// holder waits until run id runs, and returns the agent holding it.
func (c *cluster) holder(t *testing.T, id string) *agentProc {
	t.Helper()
	r := waitRecord(t, c.addr(-1)(), id, firstEpochWait, "running", func(r runRecord) bool { return r.State == "running" && r.Agent != "" })
	a := c.agents[r.Agent]
	if a == nil {
		t.Fatalf("run %s held by unknown agent %q", id, r.Agent)
	}
	return a
}

// postRunTo starts a training run through addr and returns its ID and the
// replica the balancer gave it to ("" when addr is a replica's own).
func postRunTo(t *testing.T, addr, body string) (id, replica string) {
	t.Helper()
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Post("http://"+addr+"/api/runs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /api/runs: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var info struct {
		RunID string `json:"run_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &info) != nil || info.RunID == "" {
		t.Fatalf("POST /api/runs %s: %s %s", body, resp.Status, b)
	}
	return info.RunID, resp.Header.Get(replicaHeader)
}

// deleteRun sends DELETE /api/runs/{id} to addr and returns the status and
// the run's state in the answer.
func deleteRun(t *testing.T, addr, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/api/runs/"+id, nil)
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("DELETE /api/runs/%s: %v", id, err)
	}
	defer resp.Body.Close()
	var body struct {
		State string `json:"state"`
		Run   struct {
			State string `json:"state"`
		} `json:"run"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.State == "" {
		body.State = body.Run.State
	}
	return resp.StatusCode, body.State
}

// storedMsg is one message of a run's log as the events stream holds it.
type storedMsg struct {
	seq     uint64
	attempt int
	stored  time.Time // the server's timestamp
}

// openStream opens a stream of the NATS server at url for the rest of
// the test, with a context for one call.
func openStream(t *testing.T, url, name string) (context.Context, jetstream.Stream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	t.Cleanup(cancel)
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, s
}

// storedLog reads run id's messages straight from the events stream.
func storedLog(t *testing.T, url, id string) []storedMsg {
	t.Helper()
	ctx, s := openStream(t, url, "KAIRO_EVENTS")
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"kairo.ev." + id}})
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, _ := m.Metadata()
			seq, _ := strconv.ParseUint(m.Headers().Get("Kairo-Seq"), 10, 64)
			attempt, _ := strconv.Atoi(m.Headers().Get("Kairo-Attempt"))
			out = append(out, storedMsg{seq: seq, attempt: attempt, stored: meta.Timestamp})
		}
		if n == 0 {
			return out
		}
	}
}

// jobQueued reports whether run id's job message is in the jobs stream.
func jobQueued(t *testing.T, url, id string) bool {
	t.Helper()
	ctx, s := openStream(t, url, "KAIRO_JOBS")
	for _, class := range []string{"any", "cpu", "gpu"} {
		if _, err := s.GetLastMsgForSubject(ctx, "kairo.jobs.train."+class+"."+id); err == nil {
			return true
		}
	}
	return false
}

// secs formats the time from t0 to t1 for the figures the tests log.
func secs(t0, t1 time.Time) string {
	return fmt.Sprintf("%.2fs", t1.Sub(t0).Seconds())
}
