package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// fakeJobs runs a scripted job instead of a worker process.
type fakeJobs struct {
	calls atomic.Int32
	run   func(ctx context.Context, spec worker.Spec, emit func([]byte)) error
}

func (f *fakeJobs) Run(ctx context.Context, spec worker.Spec, device string, emit func([]byte)) error {
	f.calls.Add(1)
	return f.run(ctx, spec, emit)
}

func emitJSON(emit func([]byte), v any) {
	b, _ := json.Marshal(v)
	emit(b)
}

// trainScript emits a short but complete training run.
func trainScript(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
	emitJSON(emit, schema.DatasetReady{Type: schema.TypeDatasetReady, Size: 700, MinSamples: 300})
	emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: true, TotalFolds: 1, TotalEpochs: 2, Device: "cpu"})
	for e := 0; e < 2; e++ {
		emitJSON(emit, schema.EpochMetrics{Type: schema.TypeEpochMetrics, Epoch: e, Metrics: schema.Metrics{ValAUC: schema.Float(0.6 + 0.1*float64(e))}, ElapsedSeconds: 1})
	}
	emitJSON(emit, schema.FoldComplete{Type: schema.TypeFoldComplete, PredictionsPath: "p.csv", CalibrationMethod: "raw"})
	emitJSON(emit, schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: 1, SummaryPath: spec.Reports + "/summary.json"})
	return nil
}

// testStack is one deployment in a test: an embedded JetStream server on a
// store folder, a serve replica on it and a local agent running fake jobs.
type testStack struct {
	store   string
	emb     *runlog.Embedded
	nc      *nats.Conn
	l       *runlog.Log
	reports string
}

type testServer struct {
	*httptest.Server
	srv         *Server
	stack       *testStack
	cancel      context.CancelFunc // stops the agent, then the server
	done        chan struct{}
	agentCancel context.CancelFunc
}

// testLease is short so that a lost agent shows within seconds.
const testLease = 2 * time.Second

func newStack(t *testing.T, store string) *testStack {
	t.Helper()
	emb, err := runlog.StartEmbedded(store, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	l, err := runlog.Open(context.Background(), nc, runlog.Config{Lease: testLease}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return &testStack{store: store, emb: emb, nc: nc, l: l}
}

func (st *testStack) close() {
	st.nc.Close()
	st.emb.Shutdown()
}

func newTestServer(t *testing.T, jobs agent.Jobs, mod func(*Config)) *testServer {
	t.Helper()
	st := newStack(t, t.TempDir())
	ts := startOn(t, st, jobs, mod)
	t.Cleanup(st.close)
	return ts
}

// startOn starts a replica and an agent on st; the test's cleanup stops
// them (stop does it sooner).
func startOn(t *testing.T, st *testStack, jobs agent.Jobs, mod func(*Config)) *testServer {
	t.Helper()
	return startAgentOn(t, st, jobs, mod, nil)
}

// startAgentOn is startOn with the agent's Config changed by amod.
func startAgentOn(t *testing.T, st *testStack, jobs agent.Jobs, mod func(*Config), amod func(*agent.Config)) *testServer {
	t.Helper()
	cfg := Config{Version: "test", Devices: []DeviceStatus{{Name: "cpu", OK: true}}}
	if mod != nil {
		mod(&cfg)
	}
	s := NewServer(cfg, st.l, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: httptest.NewServer(s.Handler()), srv: s, stack: st, done: make(chan struct{})}
	serverDone := make(chan struct{})
	go func() { s.Run(ctx); close(serverDone) }()
	agentDone := make(chan struct{})
	actx, acancel := context.WithCancel(context.Background())
	ts.agentCancel = acancel
	if jobs != nil {
		acfg := agent.Config{Name: "test-agent", Reports: t.TempDir()}
		if amod != nil {
			amod(&acfg)
		}
		a := agent.New(acfg, st.l, jobs, agent.Metrics{}, zerolog.Nop())
		go func() { a.Run(actx); close(agentDone) }()
	} else {
		close(agentDone)
	}
	ts.cancel = func() {
		acancel()
		<-agentDone
		cancel()
	}
	go func() { <-serverDone; close(ts.done) }()
	t.Cleanup(func() { ts.stop(t) })
	// As a load balancer does (/healthz): clients come once it follows the log.
	select {
	case <-s.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica was not ready within 10 s")
	}
	return ts
}

// stop stops the agent and the replica and waits for both.
func (ts *testServer) stop(t *testing.T) {
	ts.cancel()
	select {
	case <-ts.done:
	case <-time.After(10 * time.Second):
		t.Error("server did not stop")
	}
	ts.Close()
}

func (ts *testServer) dial(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", path, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntil reads messages, each validated against the JSON Schemas, until
// stop says so.
func readUntil(t *testing.T, c *websocket.Conn, stop func(map[string]any) bool) []map[string]any {
	t.Helper()
	var msgs []map[string]any
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		if err := schema.Validate(b); err != nil {
			t.Errorf("invalid message %s: %v", b, err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		msgs = append(msgs, m)
		if stop(m) {
			return msgs
		}
	}
}

func isType(ty string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == ty }
}

func postRun(t *testing.T, ts *testServer, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(ts.URL+"/api/runs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestHealth(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var h Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.Status != "ok" || h.Version != "test" || len(h.Datasets) != 3 || h.Devices[0].Name != "cpu" {
		t.Errorf("%d %+v", resp.StatusCode, h)
	}
}

// /healthz says 503 until the replica follows the log, then 200: a load
// balancer sends it no client before.
func TestHealthzReadiness(t *testing.T) {
	st := newStack(t, t.TempDir())
	t.Cleanup(st.close)
	s := NewServer(Config{Version: "test"}, st.l, zerolog.Nop())
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	get := func() int {
		t.Helper()
		resp, err := http.Get(hs.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before the replica runs: %d, want 503", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case <-s.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10 s")
	}
	if code := get(); code != http.StatusOK {
		t.Errorf("/healthz once ready: %d, want 200", code)
	}
}

func TestRunLifecycle(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	c := ts.dial(t, "/ws")
	code, info := postRun(t, ts, `{"dataset":"bike","epochs":2}`)
	if code != http.StatusAccepted || !strings.HasPrefix(info["run_id"].(string), "run_") {
		t.Fatalf("%d %v", code, info)
	}
	id := info["run_id"].(string)
	msgs := readUntil(t, c, isType(schema.TypeTrainingComplete))
	for i, m := range msgs {
		if m["run_id"] != id || m["seq"] != float64(i+1) {
			t.Errorf("message %d: run_id %v seq %v", i, m["run_id"], m["seq"])
		}
	}
	var best bool
	for _, m := range msgs {
		best = best || (m["type"] == schema.TypeNotification && m["kind"] == "best_auc")
	}
	if !best {
		t.Error("no best_auc notification")
	}
	// A client joining afterwards gets the history.
	late := readUntil(t, ts.dial(t, "/ws?run="+id), isType(schema.TypeTrainingComplete))
	if len(late) != len(msgs) {
		t.Errorf("replay has %d messages, live had %d", len(late), len(msgs))
	}
	waitState(t, ts, id, runlog.StateCompleted)
}

func waitState(t *testing.T, ts *testServer, id, want string) runlog.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(ts.URL + "/api/runs/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var info runlog.Record
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if info.State == want {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %q, want %q", id, info.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadRunRequests(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	for body, want := range map[string]string{
		`{"folds":50}`:                   "folds",
		`{"dataset":"../../etc/passwd"}`: "dataset",
		`{"dataset":"nope"}`:             "unknown dataset",
		`{"gpu":true}`:                   "gpu",
		`not json`:                       "invalid",
	} {
		code, m := postRun(t, ts, body)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), want) {
			t.Errorf("%s: %d %v", body, code, m)
		}
	}
	if resp, _ := http.Get(ts.URL + "/api/runs/run_nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown run: %d", resp.StatusCode)
	}
}

// untilStopped waits until the worker is stopped, then says so as a real
// worker does on SIGTERM: a training_error of its own.
func untilStopped(ctx context.Context, emit func([]byte)) error {
	<-ctx.Done()
	emitJSON(emit, schema.TrainingError{Type: schema.TypeTrainingError, Error: "context canceled (fold 0)"})
	return ctx.Err()
}

// A cancelled run ends "run cancelled", whatever its stopped worker says.
func TestCancelRun(t *testing.T) {
	started := make(chan struct{})
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 1, TotalEpochs: 9})
		close(started)
		return untilStopped(ctx, emit)
	}}, nil)
	c := ts.dial(t, "/ws")
	_, info := postRun(t, ts, `{}`)
	<-started
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/runs/"+info["run_id"].(string), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%v %v", resp, err)
	}
	msgs := readUntil(t, c, isType(schema.TypeTrainingError))
	if e := msgs[len(msgs)-1]["error"]; e != "run cancelled" {
		t.Errorf("error %v", e)
	}
	waitState(t, ts, info["run_id"].(string), runlog.StateCancelled)
}

// A worker that takes longer than the lease to stop keeps its run: its
// agent holds the lease until the worker has exited, then ends the run
// "run cancelled" in attempt 1; nobody may take it for lost meanwhile.
func TestCancelSlowWorker(t *testing.T) {
	started := make(chan struct{})
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 1, TotalEpochs: 9})
		close(started)
		<-ctx.Done()
		time.Sleep(2 * testLease) // SIGTERM ignored; SIGKILL comes after the grace
		return ctx.Err()
	}}, nil)
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	c := ts.dial(t, "/ws?run="+id)
	<-started
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/runs/"+id, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%v %v", resp, err)
	}
	time.Sleep(testLease + testLease/2)
	if rec, _, err := ts.stack.l.Get(context.Background(), id); err != nil || rec.State != runlog.StateCancelling ||
		rec.LeaseUntil == nil || !rec.LeaseUntil.After(time.Now()) {
		t.Errorf("while the worker stops, record %+v %v: want cancelling, its lease renewed", rec, err)
	}
	msgs := readUntil(t, c, isType(schema.TypeTrainingError))
	if m := msgs[len(msgs)-1]; m["error"] != "run cancelled" || m["attempt"] != float64(1) {
		t.Errorf("ending %v, want \"run cancelled\" from attempt 1", m)
	}
	if rec := waitState(t, ts, id, runlog.StateCancelled); rec.Attempt != 1 {
		t.Errorf("record %+v, want attempt 1", rec)
	}
}

// TestMain lets the test binary act as a worker for TestKilledWorker.
func TestMain(m *testing.M) {
	if os.Getenv("KAIROSCOPE_TEST_WORKER") == "hang" {
		worker.ReadSpec(os.Stdin)
		fmt.Printf(`{"type":"training_start","use_cv":true,"total_folds":1,"total_epochs":5,"pid":%d}`+"\n", os.Getpid())
		time.Sleep(time.Minute)
		return
	}
	os.Exit(m.Run())
}

// A worker killed mid-run becomes training_error, and the server serves on.
func TestKilledWorker(t *testing.T) {
	runner := &worker.Runner{Log: zerolog.Nop(), CPU: worker.Command{Device: worker.DeviceCPU, Path: os.Args[0],
		Env: []string{"KAIROSCOPE_TEST_WORKER=hang"}}}
	ts := newTestServer(t, runner, nil)
	c := ts.dial(t, "/ws")
	postRun(t, ts, `{}`)
	start := readUntil(t, c, isType(schema.TypeTrainingStart))
	pid := int(start[len(start)-1]["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	msgs := readUntil(t, c, isType(schema.TypeTrainingError))
	if e := fmt.Sprint(msgs[len(msgs)-1]["error"]); !strings.Contains(e, "killed") {
		t.Errorf("error %q", e)
	}
	if resp, err := http.Get(ts.URL + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("server after the kill: %v %v", resp, err)
	}
}

func TestToken(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, func(c *Config) { c.Token = "s3cret" })
	for _, tc := range []struct {
		path, header string
		want         int
	}{{"/", "", 401}, {"/", "Bearer nope", 401}, {"/", "Bearer s3cret", 200}, {"/?token=s3cret", "", 200}, {"/api/runs", "", 401},
		{"/metrics", "", 401}, {"/api/agents", "", 401}, {"/healthz", "", 200}} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+tc.path, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != tc.want {
			t.Errorf("%s %q: %v %v", tc.path, tc.header, resp.StatusCode, err)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil); err == nil || resp.StatusCode != 401 {
		t.Errorf("ws without token: %v", err)
	}
	ts.dial(t, "/ws?token=s3cret")
}

func TestConnectionCap(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, func(c *Config) { c.MaxConnections = 1 })
	ts.dial(t, "/ws")
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil); err == nil || resp.StatusCode != 503 {
		t.Errorf("second connection: %v", err)
	}
}

func forecastScript(release chan struct{}) func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
	return func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.PredictMessage{Status: schema.StatusMessage, Message: "Chargement des données..."})
		<-release
		for s := 1; s <= 3; s++ {
			emitJSON(emit, schema.PredictSteps{Status: schema.StatusSteps, Message: "m", StepName: fmt.Sprintf("Etape %d sur 3", s), Step: s, TotalStep: 3})
		}
		emitJSON(emit, schema.PredictOutput{Status: schema.StatusOutput, Payload: schema.ForecastPayload{{Date: "2013-01-01",
			PredictedAffluence: "10", ConfLow: "5", ConfHigh: "20", ConfidenceScore: "Low"}}})
		return nil
	}
}

// Clients connecting together share one forecast; each sees every message
// and a clean close.
func TestPredictSharesOneRun(t *testing.T) {
	release := make(chan struct{})
	jobs := &fakeJobs{run: forecastScript(release)}
	ts := newTestServer(t, jobs, nil)
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		c := ts.dial(t, "/ws/predict")
		readUntil(t, c, func(m map[string]any) bool { return m["status"] == schema.StatusMessage })
		conns = append(conns, c)
	}
	close(release)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			msgs := readUntil(t, c, func(m map[string]any) bool { return m["status"] == schema.StatusOutput })
			if len(msgs) != 4 {
				t.Errorf("%d messages", len(msgs))
			}
			_, _, err := c.ReadMessage()
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("after output: %v, want a normal close", err)
			}
		}(c)
	}
	wg.Wait()
	if n := jobs.calls.Load(); n != 1 {
		t.Errorf("%d forecasts for 3 clients", n)
	}
}

func TestPredictRejectsBadParams(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: forecastScript(nil)}, nil)
	for _, q := range []string{"?dataset=../x", "?horizon=0", "?horizon=abc"} {
		if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/predict"+q, nil); err == nil || resp.StatusCode != 400 {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// A failed forecast ends with an error message.
func TestPredictWorkerFailure(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		return fmt.Errorf("cpu worker killed by signal killed")
	}}, nil)
	msgs := readUntil(t, ts.dial(t, "/ws/predict"), func(m map[string]any) bool { return m["status"] == schema.StatusError })
	if !strings.Contains(fmt.Sprint(msgs[len(msgs)-1]["message"]), "killed") {
		t.Errorf("%v", msgs)
	}
}

// At shutdown the agent stops its workers and hands their runs back to
// the queue; the clients hear it before their close frame (1001), and a
// restart on the same store runs the job again as attempt 2, to the end.
func TestShutdownHandsRunsBack(t *testing.T) {
	var attempts atomic.Int32
	jobs := &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		n := attempts.Add(1)
		os.MkdirAll(spec.Reports, 0o755)
		os.WriteFile(filepath.Join(spec.Reports, fmt.Sprintf("attempt%d.txt", n)), nil, 0o644)
		if n == 1 {
			emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 1, TotalEpochs: 9})
			return untilStopped(ctx, emit)
		}
		return trainScript(ctx, spec, emit)
	}}
	st := newStack(t, t.TempDir())
	defer st.close()
	ts := startOn(t, st, jobs, nil)
	c := ts.dial(t, "/ws")
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	readUntil(t, c, isType(schema.TypeTrainingStart))
	ts.stop(t)
	msgs := readUntil(t, c, isType(schema.TypeNotification))
	if m := msgs[len(msgs)-1]; m["kind"] != schema.KindRetry || !strings.Contains(fmt.Sprint(m["message"]), "back to the queue") {
		t.Errorf("last message before the close: %v", m)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("closed with %v, want 1001 going away", err)
	}
	rec, _, err := st.l.Get(context.Background(), id)
	if err != nil || rec.State != runlog.StateQueued || rec.Attempt != 1 || len(rec.Notes) != 1 {
		t.Fatalf("record after the shutdown: %+v %v", rec, err)
	}

	ts2 := startOn(t, st, jobs, nil)
	c2 := ts2.dial(t, "/ws?run="+id)
	all := readUntil(t, c2, isType(schema.TypeTrainingComplete))
	var kinds []string
	for i, m := range all {
		if m["seq"] != float64(i+1) {
			t.Errorf("message %d has seq %v", i, m["seq"])
		}
		kinds = append(kinds, fmt.Sprintf("%v%v@%v", m["type"], m["kind"], m["attempt"]))
	}
	want := "training_start<nil>@1 notificationretry@1 notificationretry@2 dataset_ready<nil>@2"
	if got := strings.Join(kinds[:4], " "); got != want {
		t.Errorf("the run's log starts %s, want %s", got, want)
	}
	rec2 := waitState(t, ts2, id, runlog.StateCompleted)
	if rec2.Attempt != 2 || rec2.Retries != 0 {
		t.Errorf("record %+v", rec2)
	}
	// The reports are attempt 2's alone.
	if files, _ := st.l.ListBlobs(context.Background(), runlog.ReportBlob(id, "")); len(files) != 1 || files[0].Name != "attempt2.txt" {
		t.Errorf("reports %+v, want attempt2.txt alone", files)
	}
}

// A forecast worker killed mid-run becomes an error on /ws/predict.
func TestKilledForecastWorker(t *testing.T) {
	runner := &worker.Runner{Log: zerolog.Nop(), CPU: worker.Command{Device: worker.DeviceCPU, Path: os.Args[0],
		Env: []string{"KAIROSCOPE_TEST_WORKER=hang"}}}
	ts := newTestServer(t, runner, nil)
	c := ts.dial(t, "/ws/predict")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage() // the fake worker's first line carries its pid
	if err != nil {
		t.Fatal(err)
	}
	var first struct{ PID int }
	json.Unmarshal(b, &first)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	msgs := readUntil(t, c, func(m map[string]any) bool { return m["status"] == schema.StatusError })
	if e := fmt.Sprint(msgs[len(msgs)-1]["message"]); !strings.Contains(e, "killed") {
		t.Errorf("message %q", e)
	}
	if resp, err := http.Get(ts.URL + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("server after the kill: %v %v", resp, err)
	}
}

// tuneScript emits a short study as engine.Tune does: training_start with
// total_trials, an hpo_trial per trial (the second one failed), and the
// tune_summary.json path.
func tuneScript(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
	emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: true, TotalFolds: 2, TotalEpochs: 1, Device: "cpu", TotalTrials: spec.Run.Trials})
	best := 0
	for k := range spec.Run.Trials {
		tr := schema.HPOTrial{Type: schema.TypeHPOTrial, Trial: k, TotalTrials: spec.Run.Trials, State: schema.TrialComplete,
			Params: schema.HPOParams{LR: 1e-3, Hidden: []int{64, 64}, BatchSize: 128}, Value: schema.Float(2 - 0.1*float64(k)),
			BestTrial: &best, BestValue: 2, ElapsedSeconds: schema.Float(k)}
		if k == 1 {
			tr.State, tr.Error, tr.Value = schema.TrialFailed, "diverged", schema.Float(math.NaN())
		}
		emitJSON(emit, tr)
	}
	emitJSON(emit, schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: 2, SummaryPath: spec.Reports + "/tune_summary.json"})
	return nil
}

// A run of kind tune reaches the worker as a tune job, and its hpo_trial
// messages go to /ws like any run's: stamped, in order, kept for replay.
func TestTuneRun(t *testing.T) {
	var got worker.Spec
	var mu sync.Mutex
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		mu.Lock()
		got = spec
		mu.Unlock()
		return tuneScript(ctx, spec, emit)
	}}, nil)
	c := ts.dial(t, "/ws")
	code, info := postRun(t, ts, `{"dataset":"bike","kind":"tune","trials":3,"folds":2,"epochs":1,"seed":7}`)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, info)
	}
	id := info["run_id"].(string)
	msgs := readUntil(t, c, isType(schema.TypeTrainingComplete))
	var trials []map[string]any
	for i, m := range msgs {
		if m["run_id"] != id || m["seq"] != float64(i+1) {
			t.Errorf("message %d: run_id %v seq %v", i, m["run_id"], m["seq"])
		}
		if m["type"] == schema.TypeHPOTrial {
			trials = append(trials, m)
		}
	}
	if len(trials) != 3 || trials[1]["state"] != schema.TrialFailed || trials[1]["value"] != nil {
		t.Errorf("hpo_trial messages %v", trials)
	}
	mu.Lock()
	if got.Kind() != worker.KindTune || got.Run.Trials != 3 || got.Run.Folds != 2 || got.Run.Epochs != 1 || got.Run.Seed != 7 || got.PredictionDeltas {
		t.Errorf("spec %+v", got)
	}
	mu.Unlock()
	late := readUntil(t, ts.dial(t, "/ws?run="+id), isType(schema.TypeTrainingComplete))
	if len(late) != len(msgs) {
		t.Errorf("replay has %d messages, live had %d", len(late), len(msgs))
	}
	info2 := waitState(t, ts, id, runlog.StateCompleted)
	if !strings.HasSuffix(info2.SummaryPath, "tune_summary.json") || info2.Request.Kind != schema.RunKindTune {
		t.Errorf("run info %+v", info2)
	}
}

// A train run stays a train job, and tune's bounds are checked.
func TestTuneRunRequests(t *testing.T) {
	specs := make(chan worker.Spec, 1)
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		specs <- spec
		return trainScript(ctx, spec, emit)
	}}, nil)
	for body, want := range map[string]string{
		`{"kind":"tune","trials":51}`: "trials: must be from 1 to 50",
		`{"trials":3}`:                `trials: applies only to "kind":"tune"`,
		`{"kind":"grid"}`:             "kind",
	} {
		code, m := postRun(t, ts, body)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), want) {
			t.Errorf("%s: %d %v", body, code, m)
		}
	}
	c := ts.dial(t, "/ws")
	if code, m := postRun(t, ts, `{"kind":"train","epochs":2}`); code != http.StatusAccepted {
		t.Fatalf("%d %v", code, m)
	}
	readUntil(t, c, isType(schema.TypeTrainingComplete))
	if s := <-specs; s.Kind() != worker.KindTrain || s.Run.Trials != 0 || !s.PredictionDeltas {
		t.Errorf("train spec %+v", s)
	}
}

// waitFor polls cond until it holds, failing t after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// /ws refuses before the upgrade what it cannot serve: an unknown or
// malformed run (404), a bad since or deltas (400); since names runs to
// resume, and an unknown one in it is ignored.
func TestRunsQuery(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	waitState(t, ts, id, runlog.StateCompleted)
	base := "ws" + strings.TrimPrefix(ts.URL, "http")
	for q, want := range map[string]int{
		"/ws?run=run_000000000000": 404, "/ws?run=" + strings.Repeat("x", 5000): 404, "/ws?run=": 404,
		"/ws?since=nope": 400, "/ws?since=" + id + ":x": 400, "/ws?deltas=some": 400,
	} {
		if _, resp, err := websocket.DefaultDialer.Dial(base+q, nil); err == nil || resp == nil || resp.StatusCode != want {
			t.Errorf("%.60s: %v %v, want HTTP %d", q, resp, err, want)
		}
	}
	// Resumed after its 3rd message: exactly the rest, then the close.
	c := ts.dial(t, "/ws?run="+id+"&since="+id+":3,run_000000000000:9")
	msgs := readUntil(t, c, isType(schema.TypeTrainingComplete))
	if msgs[0]["seq"] != float64(4) {
		t.Errorf("resumed at seq %v, want 4", msgs[0]["seq"])
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the run's end: %v, want a normal close", err)
	}
	// A plain client after the run ended gets nothing of it.
	plain := ts.dial(t, "/ws")
	plain.WriteMessage(websocket.TextMessage, []byte("ping"))
	if m := readUntil(t, plain, func(map[string]any) bool { return true }); m[0]["type"] != "pong" {
		t.Errorf("a plain client's first message after the run ended: %v, want only the pong", m[0])
	}
}
