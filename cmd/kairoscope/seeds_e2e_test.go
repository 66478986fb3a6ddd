//go:build linux

package main

// The replay semantics of /ws (README, Server: "/ws: replay and resume"),
// proved with the seed documents' own clients against a server that has
// already run other runs: two completed, one cancelled while queued, one
// failed. The clients are the Python websockets client, the two JavaScript
// clients in headless Chromium, the Qt C++ client (the seed's snippet inside
// the smallest program that runs it, built here with Debian's Qt 5) and
// wscat, the seed's way of testing the connection by hand. A client connected
// after those runs must see none of them: its first message is the new run's
// first, and it sees exactly that run's messages. ?run= and ?since= are
// tested on the same kind of server.
//
// A missing tool fails the test with "run make test-deps", never skips it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// wscatDir holds wscat pinned by its package-lock.json; make test-deps
	// installs it there with npm ci.
	wscatDir  = "testdata/wscat"
	wscatHint = "run `make test-deps` to install wscat into testdata/wscat from its package-lock.json (npm ci)"

	// newRunRequest is the run the clients wait for. Its epochs and seed
	// differ from every earlier run's, so that even the clients that print
	// no run_id tell which run they show: "Training started: 1 folds, 3
	// epochs", and AUCs of their own.
	newRunRequest = `{"dataset":"bike","folds":1,"epochs":3,"seed":7}`
	// tinyRunRequest fails: 60 rows are a valid dataset but too few samples
	// to train on (min_samples).
	tinyRunRequest = `{"dataset":"tiny","folds":1,"epochs":2}`
	// resumeRunRequest is long enough to drop a client in its first fold
	// and reconnect it before the run ends.
	resumeRunRequest = `{"dataset":"bike","folds":2,"epochs":60,"patience":0}`
	resumeRunWait    = 5 * time.Minute
)

// TestE2ESeedClientsJoinAfterEarlierRuns connects each seed client to plain
// /ws on a server whose earlier runs have ended, then starts a run: each
// client's first message is that run's first, and it sees exactly that
// run's messages, its "Training complete" being the new run's. Then the
// predict client, after an earlier forecast, gets its own forecast alone.
func TestE2ESeedClientsJoinAfterEarlierRuns(t *testing.T) {
	requirePython(t)
	requireChromium(t)
	wscat := requireWscat(t)
	requireQt(t)
	h := serverWithHistory(t)
	addr := h.srv.addr
	qtBin := buildQtClient(t, addr)

	// Every client connects, and is registered by the hub, before the new
	// run starts: the earlier runs are the only history there is then.
	py := startPythonClient(t, seedClient(t, "training_client.py", addr))
	if line := py.next(t, time.Now().Add(connectWait), `"Connected"`); line != "Connected" {
		t.Fatalf("the Python client's first line %q, want \"Connected\"", line)
	}
	browser := startBrowser(t)
	js := openClient(t, browser, addr, "training_client.js")
	js.waitFor(t, connectWait, "WebSocket connected")
	qt := startProc(t, "the Qt client", false, qtBin)
	ws := startProc(t, "wscat", true, wscat, "-c", "ws://"+addr+"/ws")
	// The reference client and these four; one that quit already (the Qt
	// client after a "Training complete") is told of below.
	if err := waitClients(addr, 5); err != nil {
		t.Errorf("before the new run: %v", err)
	}

	// The seed's wscat session: "> ping".
	if _, err := io.WriteString(ws.stdin, "ping\n"); err != nil {
		t.Fatalf("typing ping into wscat: %v", err)
	}
	var beforePong []string // nothing, or what a wrong replay sent first
	for deadline := time.Now().Add(connectWait); ; {
		line := wscatLine(ws.next(t, deadline, `the {"type":"pong"}`))
		if line == `{"type":"pong"}` {
			break
		}
		beforePong = append(beforePong, line)
	}

	run := postRun(t, addr, newRunRequest)
	want := h.ref.waitEnd(t, run, smallRunWait)
	if want[len(want)-1].Type != "training_complete" {
		t.Fatalf("the new run ended with %+v", want[len(want)-1])
	}
	epochs := ofType(want, "epoch_metrics")
	if len(epochs) != 3 {
		t.Fatalf("the new run sent %d epoch_metrics, want 3: %v", len(epochs), keys(want))
	}

	t.Run("python", func(t *testing.T) {
		got := readPython(t, py, time.Now().Add(smallRunWait), "training_complete")
		sameMessages(t, "the Python client", got, want)
	})

	t.Run("javascript", func(t *testing.T) {
		js.waitFor(t, smallRunWait, "Training complete")
		var got []string
		for _, m := range js.calls() {
			got = append(got, m.Text)
		}
		start := ofType(want, "training_start")[0]
		head := []string{"WebSocket connected", fmt.Sprintf("Training started: %d folds, %d epochs", start.TotalFolds, start.TotalEpochs)}
		if len(got) != len(head)+len(epochs)+1 || !slices.Equal(got[:2], head) || got[len(got)-1] != "Training complete" {
			t.Fatalf("console %q, want %q, one \"Epoch N: AUC=…, DirAcc=…\" line for each of the new run's %d epochs, then \"Training complete\"",
				got, head, len(epochs))
		}
		line := regexp.MustCompile(`^Epoch (\d+): AUC=(\S+), DirAcc=(\S+)$`)
		for i, e := range epochs {
			m := line.FindStringSubmatch(got[2+i])
			if m == nil || m[1] != strconv.Itoa(e.Epoch) || !jsNumber(m[2], e.ValAUC) || !jsNumber(m[3], &e.DirAcc) {
				t.Errorf("console line %q, want the new run's epoch %d: AUC=%v, DirAcc=%v", got[2+i], e.Epoch, fmtAUC(e.ValAUC), e.DirAcc)
			}
		}
		js.noErrors(t)
	})

	t.Run("qt", func(t *testing.T) {
		// qDebug() writes a double with 6 significant digits, as %g does.
		g6 := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
		deadline := time.Now().Add(smallRunWait)
		for _, e := range epochs {
			auc := 0.0 // QJsonValue::toDouble of null
			if e.ValAUC != nil {
				auc = *e.ValAUC
			}
			want := fmt.Sprintf("Epoch metrics: AUC= %s DirAcc= %s", g6(auc), g6(e.DirAcc))
			if line := qt.next(t, deadline, "the new run's epoch "+strconv.Itoa(e.Epoch)); line != want {
				t.Fatalf("the Qt client printed %q, want the new run's epoch %d: %q", line, e.Epoch, want)
			}
		}
		if line := qt.next(t, deadline, `"Training complete"`); line != "Training complete" {
			t.Fatalf("the Qt client printed %q, want \"Training complete\"", line)
		}
		if err := qt.wait(clientExitWait); err != nil {
			t.Errorf("after \"Training complete\" the Qt client should quit with 0: %v\nstderr:\n%s", err, qt.stderr.String())
		}
	})

	t.Run("wscat", func(t *testing.T) {
		if len(beforePong) > 0 {
			t.Errorf("wscat printed %d lines before the pong, before the new run began: %.300q", len(beforePong), beforePong)
		}
		deadline := time.Now().Add(smallRunWait)
		var got []wsMsg
		for len(got) == 0 || got[len(got)-1].Type != "training_complete" {
			line := wscatLine(ws.next(t, deadline, "training_complete"))
			m, err := jsonObject(line)
			if err != nil {
				t.Fatalf("wscat printed %q: %v; want every line a JSON object", line, err)
			}
			got = append(got, m)
		}
		sameMessages(t, "wscat", got, want)
		ws.stdin.Close() // the end of typing: wscat closes and exits
		if err := ws.wait(clientExitWait); err != nil {
			t.Errorf("wscat after its input ended: %v\nstderr:\n%s", err, ws.stderr.String())
		}
		if rest := ws.rest(); len(rest) > 0 {
			t.Errorf("wscat printed more after training_complete: %q", rest)
		}
	})

	t.Run("predict javascript", func(t *testing.T) {
		// A forecast first, to its end: the client below must get its own.
		earlier := readUntilClose(t, "ws://"+addr+"/ws/predict", forecastWait)
		if len(earlier) == 0 || !strings.Contains(string(earlier[len(earlier)-1]), `"status":"output"`) {
			t.Fatalf("the earlier forecast ended with %q", earlier[max(0, len(earlier)-1):])
		}
		con := openClient(t, browser, addr, "predict_client.js")
		con.waitFor(t, forecastWait, "Connexion fermée proprement")
		var got []string
		// Other "Info:" lines may come (a GPU worker that fell back to the
		// CPU says so); each forecast has one "Chargement des données".
		loads, results, steps := 0, 0, 0
		for _, m := range con.calls() {
			got = append(got, m.Text)
			switch {
			case m.Text == "Info: Chargement des données...":
				loads++
			case strings.HasPrefix(m.Text, "Résultat Reçu:"):
				results++
			case strings.HasPrefix(m.Text, "Progression: "):
				steps++
			}
		}
		if len(got) < 4 || got[0] != "Connexion établie" || got[1] != "Info: Chargement des données..." || loads != 1 || results != 1 || steps == 0 ||
			!strings.HasPrefix(got[len(got)-2], "Résultat Reçu:") || got[len(got)-1] != "Connexion fermée proprement" {
			t.Errorf("console %q, want one forecast: \"Connexion établie\", its one \"Info: Chargement des données...\", its progress, "+
				"its one \"Résultat Reçu: …\", then \"Connexion fermée proprement\"", got)
		}
		con.noErrors(t)
	})
}

// TestE2ESeedPythonClientOneRun runs the seed's Python client, its URL
// changed only in host, port, path and query, on /ws?run=ID of each kind of
// ended run: it gets the run's whole history, then the server closes with
// 1000 and the client's loop ends (exit 0). An unknown or malformed ID is
// refused with HTTP 404 before the upgrade.
func TestE2ESeedPythonClientOneRun(t *testing.T) {
	requirePython(t)
	h := serverWithHistory(t)
	addr := h.srv.addr
	for _, c := range []struct{ name, id string }{
		{"completed", h.completed},
		{"cancelled while queued", h.cancelled},
		{"failed", h.failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := "ws://" + addr + "/ws?run=" + c.id
			want := h.ref.messages(c.id)
			py := startPythonClient(t, seedClientURL(t, "training_client.py", addr, url))
			deadline := time.Now().Add(smallRunWait)
			if line := py.next(t, deadline, `"Connected"`); line != "Connected" {
				t.Fatalf("first line %q, want \"Connected\"", line)
			}
			got := readPython(t, py, deadline, want[len(want)-1].Type)
			sameMessages(t, "the Python client", got, want)
			if err := py.wait(clientExitWait); err != nil {
				t.Errorf("after the run's history the Python client should end with 0 (the server's normal close ends its loop): %v\nstderr:\n%s",
					err, py.stderr.String())
			}
			if rest := py.rest(); len(rest) > 0 {
				t.Errorf("the Python client printed more after the run's end: %q", rest)
			}
			// What the Python client cannot tell apart (1000 and 1001 both
			// end its loop quietly), a Go client checks: the close is 1000.
			conn := dial(t, url)
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
						t.Errorf("?run= of an ended run ended with %v, want a close frame 1000", err)
					}
					break
				}
			}
		})
	}
	for _, c := range []struct{ name, id string }{
		{"unknown run", "run_000000000000"},
		{"malformed id", "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			py := startPythonClient(t, seedClientURL(t, "training_client.py", addr, "ws://"+addr+"/ws?run="+c.id))
			err := py.wait(connectWait)
			if rest := py.rest(); err == nil || len(rest) > 0 || !strings.Contains(py.stderr.String(), "HTTP 404") {
				t.Errorf("the Python client on ?run=%s: exit %v, printed %q; want it refused with HTTP 404 before connecting\nstderr:\n%s",
					c.id, err, rest, py.stderr.String())
			}
		})
	}
}

// TestE2EResumeSince drops a plain /ws client in the middle of a run and
// reconnects it with ?since= naming that run and an earlier, ended one: it
// gets exactly what it missed of both, no duplicate, no gap, and nothing of
// the runs it did not name. Meanwhile two of the seed's Python clients
// connect mid-run: on ?run= of the run in progress, and on plain /ws; both
// get its whole history from seq 1, then the live rest, and nothing of the
// ended runs; the first ends on the close.
func TestE2EResumeSince(t *testing.T) {
	requirePython(t)
	h := serverWithHistory(t)
	addr := h.srv.addr
	old := h.ref.messages(h.completed)
	const oldSeen = 3 // the ended run's messages the client had

	conn := dial(t, "ws://"+addr+"/ws")
	run := postRun(t, addr, resumeRunRequest)
	started := time.Now()
	var before []wsMsg
	conn.SetReadDeadline(time.Now().Add(firstEpochWait))
	for len(before) == 0 || before[len(before)-1].Type != "epoch_metrics" {
		m := readMsg(t, conn)
		if m.RunID != run {
			t.Fatalf("a plain client connected after the earlier runs got %s", m.key())
		}
		before = append(before, m)
	}
	conn.Close() // dropped: no close frame
	seen := before[len(before)-1].Seq

	// Miss some messages, then come back while the run goes on.
	missed := h.ref.until(t, resumeRunWait, "more of the run", func(runs map[string][]wsMsg) bool {
		return len(runs[run]) >= len(before)+5
	})
	if ended(missed[run]) {
		t.Fatalf("the run ended before the client reconnected: make resumeRunRequest longer")
	}
	since := fmt.Sprintf("%s:%d,%s:%d", h.completed, old[oldSeen-1].Seq, run, seen)
	conn = dial(t, "ws://"+addr+"/ws?since="+since)

	py := startPythonClient(t, seedClientURL(t, "training_client.py", addr, "ws://"+addr+"/ws?run="+run))
	plain := startPythonClient(t, seedClient(t, "training_client.py", addr))
	for _, p := range []*proc{py, plain} {
		if line := p.next(t, time.Now().Add(connectWait), `"Connected"`); line != "Connected" {
			t.Fatalf("the Python client's first line %q, want \"Connected\"", line)
		}
	}

	got := map[string][]wsMsg{}
	conn.SetReadDeadline(time.Now().Add(resumeRunWait))
	for !ended(got[run]) {
		m := readMsg(t, conn)
		if m.Type == "replay_gap" {
			t.Errorf("replay_gap %+v: the log holds the whole history", m)
		}
		got[m.RunID] = append(got[m.RunID], m)
	}
	all := h.ref.waitEnd(t, run, resumeRunWait)
	t.Logf("dropped after seq %d, reconnected after seq %d of %d (%d messages to a plain client), in %v",
		seen, missed[run][len(missed[run])-1].Seq, all[len(all)-1].Seq, len(all), time.Since(started).Round(time.Millisecond))
	sameMessages(t, "the resumed client, of the run in progress", got[run], afterSeq(all, seen))
	sameMessages(t, "the resumed client, of the ended run", got[h.completed], old[oldSeen:])
	for id, msgs := range got {
		if id != run && id != h.completed {
			t.Errorf("the resumed client got %d messages of run %q, which it did not name: %v", len(msgs), id, keys(msgs))
		}
	}
	if missedNow := len(afterSeq(missed[run], seen)); missedNow < 5 {
		t.Errorf("only %d messages were missed while away", missedNow)
	}

	pyGot := readPython(t, py, time.Now().Add(resumeRunWait), "training_complete")
	sameMessages(t, "the Python client on ?run= of the run in progress", pyGot, all)
	plainGot := readPython(t, plain, time.Now().Add(resumeRunWait), "training_complete")
	sameMessages(t, "the Python client on /ws, connected mid-run", plainGot, all)
	if err := py.wait(clientExitWait); err != nil {
		t.Errorf("the Python client on ?run= should end with 0 after the run's end: %v\nstderr:\n%s", err, py.stderr.String())
	}
}

// history is a server that has run, before the test's own runs: two small
// runs to completion, one cancelled while it was queued behind the second,
// and one that failed. ref has followed plain /ws since before the first.
type history struct {
	srv                                  *server
	ref                                  *recorder
	completed, second, cancelled, failed string
}

func serverWithHistory(t *testing.T) *history {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "datasets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.csv"), []byte(daysCSV("2020-01-01", 60, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, nil, "--datasets", dir)
	h := &history{srv: srv, ref: record(t, srv.addr)}
	h.completed = postRun(t, srv.addr, smallRunRequest)
	h.ref.waitEnd(t, h.completed, smallRunWait)
	h.second = postRun(t, srv.addr, smallRunRequest)
	h.cancelled = postRun(t, srv.addr, smallRunRequest)
	if st := cancelRun(t, srv.addr, h.cancelled); st != "cancelled" {
		t.Fatalf("run %s was %s once cancelled, want cancelled while queued behind %s", h.cancelled, st, h.second)
	}
	h.ref.waitEnd(t, h.second, smallRunWait)
	h.ref.waitEnd(t, h.cancelled, smallRunWait)
	h.failed = postRun(t, srv.addr, tinyRunRequest)
	h.ref.waitEnd(t, h.failed, smallRunWait)
	for id, want := range map[string]struct{ state, last string }{
		h.completed: {"completed", "training_complete"},
		h.second:    {"completed", "training_complete"},
		h.cancelled: {"cancelled", "training_error"},
		h.failed:    {"failed", "training_error"},
	} {
		// The record ends just after the terminal message is written.
		waitState(t, srv.addr, id, want.state)
		msgs := h.ref.messages(id)
		if last := msgs[len(msgs)-1]; last.Type != want.last {
			t.Fatalf("run %s ended with %s %q, want %s", id, last.Type, last.Error, want.last)
		}
	}
	return h
}

// wsMsg is what the tests read of a /ws message.
type wsMsg struct {
	Type        string   `json:"type"`
	RunID       string   `json:"run_id"`
	Seq         int      `json:"seq"`
	Attempt     int      `json:"attempt"`
	TotalFolds  int      `json:"total_folds"`
	TotalEpochs int      `json:"total_epochs"`
	Epoch       int      `json:"epoch"`
	ValAUC      *float64 `json:"val_auc"`
	DirAcc      float64  `json:"DirAcc"`
	Error       string   `json:"error"`
}

func (m wsMsg) key() string {
	return fmt.Sprintf("%s/%d %s attempt %d", m.RunID, m.Seq, m.Type, m.Attempt)
}

func keys(msgs []wsMsg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.key()
	}
	return out
}

func ended(msgs []wsMsg) bool {
	return len(msgs) > 0 && (msgs[len(msgs)-1].Type == "training_complete" || msgs[len(msgs)-1].Type == "training_error")
}

func ofType(msgs []wsMsg, typ string) []wsMsg {
	return slices.DeleteFunc(slices.Clone(msgs), func(m wsMsg) bool { return m.Type != typ })
}

func afterSeq(msgs []wsMsg, seq int) []wsMsg {
	return slices.DeleteFunc(slices.Clone(msgs), func(m wsMsg) bool { return m.Seq <= seq })
}

// sameMessages fails unless got is want: the same runs, seqs, types and
// attempts, in the same order.
func sameMessages(t *testing.T, who string, got, want []wsMsg) {
	t.Helper()
	g, w := keys(got), keys(want)
	if slices.Equal(g, w) {
		return
	}
	i := 0 // the first difference
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	from := max(0, i-2)
	t.Errorf("%s got %d messages, want %d; from message %d on it got\n  %s\nwant\n  %s", who, len(g), len(w), from+1,
		strings.Join(g[from:min(len(g), i+8)], "\n  "), strings.Join(w[from:min(len(w), i+8)], "\n  "))
}

// jsonObject decodes one line that must be a JSON object.
func jsonObject(line string) (wsMsg, error) {
	var m wsMsg
	if !strings.HasPrefix(line, "{") {
		return m, errors.New("not a JSON object")
	}
	err := json.Unmarshal([]byte(line), &m)
	return m, err
}

// recorder follows plain /ws from before the first run and keeps every
// message of every run: what the tests compare the seed clients with.
type recorder struct {
	mu      sync.Mutex
	runs    map[string][]wsMsg
	err     error         // why reading stopped
	changed chan struct{} // a token after each change
}

func record(t *testing.T, addr string) *recorder {
	t.Helper()
	conn := dial(t, "ws://"+addr+"/ws")
	r := &recorder{runs: map[string][]wsMsg{}, changed: make(chan struct{}, 1)}
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			var m wsMsg
			if err == nil {
				err = json.Unmarshal(b, &m)
			}
			r.mu.Lock()
			switch {
			case err != nil:
				r.err = err
			case m.RunID != "": // chart_update belongs to no run
				r.runs[m.RunID] = append(r.runs[m.RunID], m)
			}
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// until waits up to d for cond over the runs' messages and returns a copy
// of them.
func (r *recorder) until(t *testing.T, d time.Duration, what string, cond func(map[string][]wsMsg) bool) map[string][]wsMsg {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		ok, err := cond(r.runs), r.err
		runs := make(map[string][]wsMsg, len(r.runs))
		for id, msgs := range r.runs {
			runs[id] = slices.Clone(msgs)
		}
		r.mu.Unlock()
		if ok {
			return runs
		}
		if err != nil {
			t.Fatalf("the reference /ws client stopped reading (%v) before %s", err, what)
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no %s on /ws within %v", what, d)
		}
	}
}

// waitEnd returns run id's messages once its terminal message is in. They
// must number the run from seq 1, in order, attempt 1, ending once.
func (r *recorder) waitEnd(t *testing.T, id string, d time.Duration) []wsMsg {
	t.Helper()
	msgs := r.until(t, d, "end of run "+id, func(runs map[string][]wsMsg) bool { return ended(runs[id]) })[id]
	for i, m := range msgs {
		if (i == 0 && m.Seq != 1) || (i > 0 && m.Seq <= msgs[i-1].Seq) || m.Attempt != 1 || (i < len(msgs)-1 && ended(msgs[i:i+1])) {
			t.Fatalf("run %s on /ws, as a client connected before it began: %v; want seqs from 1, increasing, attempt 1, one ending last", id, keys(msgs))
		}
	}
	return msgs
}

// messages returns what run id has sent so far.
func (r *recorder) messages(id string) []wsMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs[id])
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: connectWait}
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dialing %s: %v %s", url, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readMsg(t *testing.T, conn *websocket.Conn) wsMsg {
	t.Helper()
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("reading /ws: %v", err)
	}
	m, err := jsonObject(string(b))
	if err != nil {
		t.Fatalf("/ws sent %.200q: %v", b, err)
	}
	return m
}

// readUntilClose reads a WebSocket to the server's normal close and
// returns its messages.
func readUntilClose(t *testing.T, url string, d time.Duration) [][]byte {
	t.Helper()
	conn := dial(t, url)
	conn.SetReadDeadline(time.Now().Add(d))
	var msgs [][]byte
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("%s ended with %v, want a close frame 1000", url, err)
			}
			return msgs
		}
		msgs = append(msgs, b)
	}
}

// waitClients waits until the server counts n WebSocket clients.
func waitClients(addr string, n int) error {
	c := &http.Client{Timeout: httpTimeout}
	deadline := time.Now().Add(connectWait)
	for {
		var h struct{ Clients int }
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		if err == nil && h.Clients == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server counts %d WebSocket clients (%v), want %d", h.Clients, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cancelRun cancels run id and returns its state then.
func cancelRun(t *testing.T, addr, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/api/runs/"+id, nil)
	resp, err := (&http.Client{Timeout: httpTimeout}).Do(req)
	if err != nil {
		t.Fatalf("DELETE /api/runs/%s: %v", id, err)
	}
	defer resp.Body.Close()
	var rec struct{ State string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("DELETE /api/runs/%s: %s %s", id, resp.Status, b)
	}
	return rec.State
}

// waitState waits until GET /api/runs/{id} says state.
func waitState(t *testing.T, addr, id, state string) {
	t.Helper()
	c := &http.Client{Timeout: httpTimeout}
	deadline := time.Now().Add(connectWait)
	for {
		resp, err := c.Get("http://" + addr + "/api/runs/" + id)
		if err != nil {
			t.Fatalf("GET /api/runs/%s: %v", id, err)
		}
		var rec struct{ State string }
		err = json.NewDecoder(resp.Body).Decode(&rec)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/runs/%s: %s %v", id, resp.Status, err)
		}
		if rec.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s, want %s", id, rec.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seedClientURL is seedClient with the seed's whole URL ("ws://localhost:8000/ws")
// replaced by url: another path and query on the server at addr.
func seedClientURL(t *testing.T, name, addr, url string) string {
	t.Helper()
	src := seedClient(t, name, addr)
	old := "ws://" + addr + "/ws\""
	if n := strings.Count(src, old); n != 1 {
		t.Fatalf("%s names %s %d times, want once", name, old, n)
	}
	return strings.Replace(src, old, url+"\"", 1)
}

// startPythonClient runs the seed's Python client, as given, under Debian's
// python3.
func startPythonClient(t *testing.T, src string) *proc {
	t.Helper()
	script := filepath.Join(t.TempDir(), "training_client.py")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// -u: the client prints to a pipe, which Python would otherwise buffer.
	return startProc(t, "the Python client", false, systemPython, "-u", script)
}

// readPython reads the Python client's lines, "Received <type>: <dict>",
// up to the first of type last.
func readPython(t *testing.T, p *proc, deadline time.Time, last string) []wsMsg {
	t.Helper()
	received := regexp.MustCompile(`^Received (\w+): (\{.*\})$`)
	runID := regexp.MustCompile(`'run_id': '([^']*)'`)
	seq := regexp.MustCompile(`'seq': (\d+), 'attempt': (\d+)\}$`)
	var got []wsMsg
	for len(got) == 0 || got[len(got)-1].Type != last {
		line := p.next(t, deadline, last)
		m := received.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("the Python client printed %.300q", line)
		}
		msg := wsMsg{Type: m[1]}
		if id := runID.FindStringSubmatch(m[2]); id != nil {
			msg.RunID = id[1]
		}
		if s := seq.FindStringSubmatch(m[2]); s != nil {
			msg.Seq, _ = strconv.Atoi(s[1])
			msg.Attempt, _ = strconv.Atoi(s[2])
		}
		got = append(got, msg)
	}
	return got
}

// wscatLine is a line wscat printed, without the prompt ("> ") that its
// readline writes even when its output is a pipe. What wscat receives it
// prints as it is, one message a line, when its output is not a terminal.
func wscatLine(line string) string {
	for strings.HasPrefix(line, "> ") {
		line = line[2:]
	}
	return line
}

// jsNumber reports whether s is how JavaScript prints v (null for nil).
func jsNumber(s string, v *float64) bool {
	if v == nil {
		return s == "null"
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == *v
}

func fmtAUC(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// requireWscat returns wscat's path, or fails unless make test-deps has
// installed it.
func requireWscat(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(wscatDir, "node_modules", ".bin", "wscat"))
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		t.Fatalf("no wscat: %v\n%s", err, wscatHint)
	}
	return bin
}

// proc is a client program whose output the test reads line by line.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser // nil unless asked for
	out    *lineBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error // how it exited; valid once exited is closed
	read   int   // lines of out taken by next
}

// startProc starts a client program; with stdin the test can type into it.
// It is killed at the end of the test if still running.
func startProc(t *testing.T, name string, stdin bool, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), out: &lineBuffer{changed: make(chan struct{}, 1)},
		stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.stderr
	if stdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait() // after the output is all copied
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(clientExitWait):
			t.Errorf("%s did not exit after SIGKILL", name)
		}
	})
	return p
}

// next returns the next line the program prints, failing if it exits or
// deadline passes first.
func (p *proc) next(t *testing.T, deadline time.Time, what string) string {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if line, ok := p.out.line(p.read); ok {
			p.read++
			return line
		}
		select {
		case <-p.out.changed:
		case <-p.exited:
			if line, ok := p.out.line(p.read); ok {
				p.read++
				return line
			}
			t.Fatalf("%s exited (%v) while waiting for %s\nstderr:\n%s", p.name, p.err, what, p.stderr.String())
		case <-timer.C:
			t.Fatalf("no %s from %s within its time\nstderr:\n%s", what, p.name, p.stderr.String())
		}
	}
}

// wait waits up to d for the program to exit and returns how it did.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// rest returns the lines printed and not yet taken by next.
func (p *proc) rest() []string {
	var out []string
	for i := p.read; ; i++ {
		line, ok := p.out.line(i)
		if !ok {
			return out
		}
		out = append(out, line)
	}
}

// lineBuffer is an io.Writer that keeps what is written as lines.
type lineBuffer struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // a token after each new line
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	l.mu.Unlock()
	if added {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (l *lineBuffer) line(i int) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < len(l.lines) {
		return l.lines[i], true
	}
	return "", false
}

// TestE2ESeedPythonClientAllDeltasOnASmallQueue joins the seed's Python client,
// with ?deltas=all, to a run whose first fold has sent megabytes of
// prediction_delta, on a server whose send queue holds only 8 live
// messages: it gets the whole run, seq 1 to the end with none missing, and
// is not closed as slow (4008). Here the Python client reads its history
// faster than the run sends 8 messages, so this does not catch live
// messages queued during a replay (breaking the hub that way still passes);
// ws/hub's TestLongCatchUpIsNotSlow does, with 100,000 messages of history.
func TestE2ESeedPythonClientAllDeltasOnASmallQueue(t *testing.T) {
	requirePython(t)
	srv := startServerWith(t, nil, "--send-queue", "8")
	ref := record(t, srv.addr)
	run := postRun(t, srv.addr, resumeRunRequest)
	ref.until(t, resumeRunWait, "the first fold's end", func(runs map[string][]wsMsg) bool {
		return len(ofType(runs[run], "fold_complete")) > 0
	})
	py := startPythonClient(t, seedClientURL(t, "training_client.py", srv.addr, "ws://"+srv.addr+"/ws?deltas=all"))
	deadline := time.Now().Add(resumeRunWait)
	if line := py.next(t, deadline, `"Connected"`); line != "Connected" {
		t.Fatalf("first line %q, want \"Connected\"", line)
	}
	got := readPython(t, py, deadline, "training_complete")
	all := ref.waitEnd(t, run, resumeRunWait)
	for i, m := range got {
		if m.RunID != run || m.Seq != i+1 {
			t.Fatalf("message %d: %s, want %s/%d: every message of the run, in order", i+1, m.key(), run, i+1)
		}
	}
	if last := all[len(all)-1].Seq; len(got) != last {
		t.Errorf("the Python client got %d messages, want the run's %d", len(got), last)
	}
	if deltas := len(ofType(got, "prediction_delta")); deltas < 100 {
		t.Errorf("only %d prediction_delta: the history was not long", deltas)
	}
}
