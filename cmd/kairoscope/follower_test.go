//go:build linux

package main

// WebSocket clients that follow runs through faults: each keeps every
// message it got, with when and on which connection, and when its
// connection drops it connects again (through whatever address it is given:
// a load balancer, or a restarted server) and resumes with ?since=, as the
// dashboard does. The checks below read what they got.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kairoscope/kairoscope/schema"
)

const (
	// followerRetry is the pause between two tries to connect again, and
	// followerLost how long a follower keeps trying before it gives up.
	followerRetry = 100 * time.Millisecond
	followerLost  = 60 * time.Second
)

// runMsg is one message a follower got.
type runMsg struct {
	Type    string `json:"type"`
	RunID   string `json:"run_id"`
	Seq     uint64 `json:"seq"`
	Attempt int    `json:"attempt"`
	Kind    string `json:"kind"`    // notification
	Message string `json:"message"` // notification
	Error   string `json:"error"`   // training_error
	FoldID  int    `json:"fold_id"`
	Epoch   int    `json:"epoch"`
	Final   bool   `json:"final"` // prediction_delta

	raw  []byte
	at   time.Time
	conn int // index of the connection it came on
}

func (m runMsg) terminal() bool {
	return m.Type == "training_complete" || m.Type == "training_error"
}

func (m runMsg) String() string {
	s := fmt.Sprintf("%d@%d %s", m.Seq, m.Attempt, m.Type)
	switch {
	case m.Kind != "":
		s += " " + m.Kind
	case m.Type == "epoch_metrics":
		s += fmt.Sprintf(" fold %d epoch %d", m.FoldID, m.Epoch)
	case m.Error != "":
		s += fmt.Sprintf(" %q", m.Error)
	}
	return s
}

// wsConn is one connection of a follower.
type wsConn struct {
	replica string // the balancer's X-Kairo-Replica, "" when direct
	opened  time.Time
	closed  time.Time
	err     error // how it ended
}

// follower follows path (/ws?…) on addr() until stopped, or until the
// server closes a one-run client normally (1000) after the run's end.
type follower struct {
	t    *testing.T
	name string
	path string
	run  string // the run of a ?run= client, "" for a plain one
	addr func() string

	mu      sync.Mutex
	msgs    []runMsg
	conns   []wsConn
	last    map[string]uint64 // last seq per run
	invalid []string          // messages that break the schema
	cur     *websocket.Conn
	gaveUp  error

	stopped chan struct{}
	ended   chan struct{} // closed when the loop has returned
}

// follow starts a follower of path on addr(), and stops it when the test
// ends.
func follow(t *testing.T, name string, addr func() string, path string) *follower {
	t.Helper()
	f := &follower{t: t, name: name, path: path, addr: addr, last: map[string]uint64{},
		stopped: make(chan struct{}), ended: make(chan struct{})}
	if i := strings.Index(path, "run="); i >= 0 {
		f.run, _, _ = strings.Cut(path[i+len("run="):], "&")
	}
	connected := make(chan struct{})
	go f.loop(connected)
	select {
	case <-connected:
	case <-f.ended:
		t.Fatalf("follower %s never connected: %v", name, f.gaveUp)
	case <-time.After(connectWait):
		t.Fatalf("follower %s did not connect within %v", name, connectWait)
	}
	t.Cleanup(f.stop)
	return f
}

func (f *follower) loop(connected chan struct{}) {
	defer close(f.ended)
	lost := time.Now()
	for {
		select {
		case <-f.stopped:
			return
		default:
		}
		u := "ws://" + f.addr() + f.path + f.since()
		conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			if time.Since(lost) > followerLost {
				f.mu.Lock()
				f.gaveUp = fmt.Errorf("no connection for %v: %w", followerLost, err)
				f.mu.Unlock()
				return
			}
			time.Sleep(followerRetry)
			continue
		}
		f.mu.Lock()
		n := len(f.conns)
		f.conns = append(f.conns, wsConn{replica: resp.Header.Get(replicaHeader), opened: time.Now()})
		f.cur = conn
		f.mu.Unlock()
		if connected != nil {
			close(connected)
			connected = nil
		}
		err = f.read(conn, n)
		conn.Close()
		f.mu.Lock()
		f.conns[n].closed, f.conns[n].err = time.Now(), err
		f.cur = nil
		f.mu.Unlock()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure && f.run != "" {
			return // the run ended: a one-run client is done
		}
		lost = time.Now()
	}
}

// since is the ?since= that resumes where the follower is.
func (f *follower) since() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for id, seq := range f.last {
		if f.run == "" || id == f.run {
			parts = append(parts, fmt.Sprintf("%s:%d", id, seq))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	sep := "?"
	if strings.Contains(f.path, "?") {
		sep = "&"
	}
	return sep + "since=" + strings.Join(parts, ",")
}

func (f *follower) read(conn *websocket.Conn, n int) error {
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var m runMsg
		if err := json.Unmarshal(b, &m); err != nil {
			m.Type = "not JSON: " + err.Error()
		}
		m.raw, m.at, m.conn = b, time.Now(), n
		f.mu.Lock()
		if err := schema.Validate(b); err != nil && m.Type != "replay_gap" {
			f.invalid = append(f.invalid, fmt.Sprintf("%.200s: %v", b, err))
		}
		f.msgs = append(f.msgs, m)
		if m.RunID != "" && m.Seq > f.last[m.RunID] {
			f.last[m.RunID] = m.Seq
		}
		f.mu.Unlock()
	}
}

// stop closes the follower's connection and waits for its loop to end.
func (f *follower) stop() {
	select {
	case <-f.stopped:
	default:
		close(f.stopped)
	}
	f.mu.Lock()
	if f.cur != nil {
		f.cur.Close()
	}
	f.mu.Unlock()
	<-f.ended
}

// ofRun returns the messages of run id, in the order received.
func (f *follower) ofRun(id string) []runMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runMsg
	for _, m := range f.msgs {
		if m.RunID == id || m.Type == "replay_gap" {
			out = append(out, m)
		}
	}
	return out
}

// connections returns the follower's connections so far.
func (f *follower) connections() []wsConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns)
}

// waitFor waits up to d for a message of run id that cond accepts, and
// returns it.
func (f *follower) waitFor(t *testing.T, id string, d time.Duration, what string, cond func(runMsg) bool) runMsg {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, m := range f.ofRun(id) {
			if m.RunID == id && cond(m) {
				return m
			}
		}
		select {
		case <-f.ended:
			if f.run == "" {
				t.Fatalf("follower %s stopped (%v) before %s; got %s", f.name, f.gaveUp, what, summary(f.ofRun(id)))
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %s: no %s of %s within %v; got %s", f.name, what, id, d, summary(f.ofRun(id)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEnd waits up to d for the run's terminal message and returns it; a
// one-run follower must then be closed normally.
func (f *follower) waitEnd(t *testing.T, id string, d time.Duration) runMsg {
	t.Helper()
	m := f.waitFor(t, id, d, "terminal message", runMsg.terminal)
	if f.run == id {
		select {
		case <-f.ended:
		case <-time.After(connectWait):
			t.Errorf("follower %s: no normal close within %v of %s", f.name, connectWait, m)
		}
	}
	return m
}

// summary shortens a message list for a failure: types and seqs, with runs
// of epochs and deltas folded.
func summary(msgs []runMsg) string {
	var parts []string
	for i, m := range msgs {
		if i > 0 && i < len(msgs)-1 && (m.Type == "prediction_delta" || m.Type == "epoch_metrics") &&
			msgs[i-1].Type == m.Type && msgs[i+1].Type == m.Type {
			if parts[len(parts)-1] != "…" {
				parts = append(parts, "…")
			}
			continue
		}
		parts = append(parts, m.String())
	}
	return fmt.Sprintf("%d messages [%s]", len(msgs), strings.Join(parts, ", "))
}

// runLog is what checkRunLog found in one run's messages.
type runLog struct {
	msgs     []runMsg
	terminal runMsg
	attempts []int     // attempts in the order they appear
	firstOf  []runMsg  // the first message of each attempt
	retries  []runMsg  // notifications of kind retry
	arrived  time.Time // when the terminal message arrived
}

// checkRunLog checks one follower's messages of run id: seqs strictly
// increasing, and with every seq (gapless from 1) when all is set; no
// replay_gap; exactly one terminal message, the last; attempts never going
// back (an old attempt writes nothing after a newer one's first message),
// each new attempt opening with a retry notification; every message valid.
func checkRunLog(t *testing.T, f *follower, id string, all bool) runLog {
	t.Helper()
	msgs := f.ofRun(id)
	var r runLog
	r.msgs = msgs
	var last uint64
	terminals := 0
	for i, m := range msgs {
		if m.Type == "replay_gap" {
			t.Errorf("%s: replay_gap %s: history was lost", f.name, m.raw)
			continue
		}
		switch {
		case m.Seq <= last:
			t.Errorf("%s: message %d is seq %d after %d: a duplicate or out of order", f.name, i, m.Seq, last)
		case all && m.Seq != last+1:
			t.Errorf("%s: message %d is seq %d after %d: a gap", f.name, i, m.Seq, last)
		case !all && last == 0 && m.Seq != 1 && f.run == id:
			t.Errorf("%s: first message is seq %d, want 1", f.name, m.Seq)
		}
		last = max(last, m.Seq)
		if n := len(r.attempts); n == 0 || m.Attempt != r.attempts[n-1] {
			if n > 0 && m.Attempt < r.attempts[n-1] {
				t.Errorf("%s: %s comes after attempt %d's first message %s: an old attempt wrote after a newer one", f.name, m, r.attempts[n-1], r.firstOf[n-1])
			}
			r.attempts = append(r.attempts, m.Attempt)
			r.firstOf = append(r.firstOf, m)
			if n > 0 && m.Attempt > 1 && !(m.Type == "notification" && m.Kind == schema.KindRetry) && !m.terminal() {
				t.Errorf("%s: attempt %d opens with %s, want a retry notification", f.name, m.Attempt, m)
			}
		}
		if m.Type == "notification" && m.Kind == schema.KindRetry {
			r.retries = append(r.retries, m)
		}
		if m.terminal() {
			terminals++
			r.terminal, r.arrived = m, m.at
			if i != len(msgs)-1 {
				t.Errorf("%s: terminal %s is not the last message (then %s)", f.name, m, summary(msgs[i+1:]))
			}
		}
	}
	if terminals != 1 {
		t.Errorf("%s: %d terminal messages, want 1: %s", f.name, terminals, summary(msgs))
	}
	f.mu.Lock()
	for _, s := range f.invalid {
		t.Errorf("%s: invalid message %s", f.name, s)
	}
	f.mu.Unlock()
	return r
}

// sameAs checks that a follower without deltas got exactly full's
// messages from its first one on, less the prediction_delta ones, byte
// for byte.
func sameAs(t *testing.T, f *follower, id string, full []runMsg) {
	t.Helper()
	got := slices.DeleteFunc(f.ofRun(id), func(m runMsg) bool { return m.Type == "replay_gap" })
	want := slices.DeleteFunc(slices.Clone(full), func(m runMsg) bool { return m.Type == "prediction_delta" })
	if len(got) > 0 {
		want = slices.DeleteFunc(want, func(m runMsg) bool { return m.Seq < got[0].Seq })
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d messages, want %d: got %s\nwant %s", f.name, len(got), len(want), summary(got), summary(want))
		return
	}
	for i := range got {
		if string(got[i].raw) != string(want[i].raw) {
			t.Errorf("%s: message %d is %s, want %s", f.name, i, got[i], want[i])
			return
		}
	}
}

// replay reads run id's whole log afresh from addr (/ws?run=&deltas=all,
// until the normal close) and checks it is what the live follower got.
func replay(t *testing.T, addr, id string, live []runMsg) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?deltas=all&run="+id, nil)
	if err != nil {
		t.Fatalf("replaying %s: %v", id, err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(connectWait))
	var got []runMsg
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Errorf("replaying %s: %v after %d messages, want a normal close", id, err, len(got))
			}
			break
		}
		var m runMsg
		json.Unmarshal(b, &m)
		m.raw = b
		got = append(got, m)
	}
	if len(got) != len(live) {
		t.Errorf("replay of %s: %d messages, live %d:\nreplay %s\nlive %s", id, len(got), len(live), summary(got), summary(live))
		return
	}
	for i := range got {
		if string(got[i].raw) != string(live[i].raw) {
			t.Errorf("replay of %s: message %d is %s, live %s", id, i, got[i], live[i])
			return
		}
	}
}

// getRecord reads run id's record from addr (GET /api/runs/{id}).
func getRecord(t *testing.T, addr, id string) runRecord {
	t.Helper()
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Get("http://" + addr + "/api/runs/" + id)
	if err != nil {
		t.Fatalf("GET /api/runs/%s: %v", id, err)
	}
	defer resp.Body.Close()
	var r runRecord
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		t.Fatalf("GET /api/runs/%s: %s", id, resp.Status)
	}
	return r
}

// runRecord is the part of a run's record the fault tests read.
type runRecord struct {
	ID         string     `json:"run_id"`
	State      string     `json:"state"`
	Attempt    int        `json:"attempt"`
	Retries    int        `json:"retries"`
	MaxRetries int        `json:"max_retries"`
	Agent      string     `json:"agent"`
	Notes      []string   `json:"notes"`
	Error      string     `json:"error"`
	LeaseUntil *time.Time `json:"lease_until"`
	Ended      *time.Time `json:"ended"`
	Messages   uint64     `json:"messages"`
}

// waitRecord polls run id's record on addr until cond accepts it, for up
// to d.
func waitRecord(t *testing.T, addr, id string, d time.Duration, what string, cond func(runRecord) bool) runRecord {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := getRecord(t, addr, id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: not %s within %v: %+v", id, what, d, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
