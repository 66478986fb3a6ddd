//go:build linux

package main

// The dashboard's end-to-end test: the built server with a token, the page in
// headless Chromium, a run started from the keyboard, and a Go /ws client
// reading the same stream to check what the page shows against what the
// server sent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"
)

const (
	// dashboardRunFolds and dashboardRunEpochs size the run typed into the
	// page: long enough (~80 ms an epoch here) that the page is seen
	// showing epochs before the run ends, short enough for make test.
	dashboardRunFolds  = "2"
	dashboardRunEpochs = "20"
	dashboardToken     = "dash-s3cret"
	dashboardHorizon   = "14"

	pageWait   = 20 * time.Second // a page to load or to show what it was sent
	maxTabs    = 25               // Tab presses allowed to reach a control
	artifactsV = "KAIROSCOPE_TEST_ARTIFACTS"
)

// artifactsDir is where the dashboard test leaves its screenshots:
// $KAIROSCOPE_TEST_ARTIFACTS, or testdata/artifacts beside this file
// (ignored by git and by go build).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(artifactsV)
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshots folder: %v", err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// TestE2EDashboard serves the dashboard with a token and checks, in
// headless Chromium: the redirect from / keeps the token; a run typed and
// started from the keyboard shows its epochs while it trains; the last
// epoch's numbers and the count of epochs on the page equal the
// epoch_metrics a Go client read from /ws, across a connection dropped
// mid-run and another after the end (replays add no duplicate); every
// fold's reliability bins equal those of the rows sent; the forecast
// equals the one a Go client of /ws/predict got; a run can be cancelled; a
// tune started over the API shows its trials' values as sent; a
// phone-sized page replays the history and fits its width; and no page
// logged an error. It saves a desktop and a phone screenshot.
func TestE2EDashboard(t *testing.T) {
	requireChromium(t)
	srv := startServerWith(t, []string{"KAIROSCOPE_TOKEN=" + dashboardToken})
	sent := followWS(t, srv.addr)
	browser := startBrowser(t)
	dir := artifactsDir(t)

	desk, con := openDashboard(t, browser, fmt.Sprintf("http://%s/?token=%s", srv.addr, dashboardToken), 1280, 900, false)
	if loc := evalJS[string](t, desk, `location.pathname + location.search`); loc != "/dashboard?token="+dashboardToken {
		t.Errorf("the browser's GET / landed on %q, want /dashboard?token=%s", loc, dashboardToken)
	}
	waitJS[bool](t, desk, pageWait, `document.querySelector("#conn").dataset.state === "open" && document.querySelector("#f-dataset option[value=bike]") !== null`)

	// Type the run's parameters and start it with the keyboard alone.
	do(t, desk, chromedp.SendKeys(chromedp.CSS(`input[name="folds"]`), dashboardRunFolds),
		chromedp.SendKeys(chromedp.CSS(`input[name="epochs"]`), dashboardRunEpochs),
		chromedp.SendKeys(chromedp.CSS(`input[name="patience"]`), "0"))
	tabTo(t, desk, "start")
	if outline := evalJS[string](t, desk, `getComputedStyle(document.activeElement).outlineStyle`); outline == "none" {
		t.Errorf("the focused start button shows no outline: focus is not visible")
	}
	do(t, desk, chromedp.KeyEvent(kb.Enter))
	runID := waitJS[string](t, desk, pageWait, `document.querySelector("main").dataset.runId.startsWith("run_") && document.querySelector("main").dataset.runId`)

	// Live: the page shows an epoch while the run still trains.
	waitJS[bool](t, desk, pageWait, `document.querySelector('#metrics-body tr[data-fold="0"]') !== null`)
	if sent.has(runID, "training_complete") {
		t.Errorf("the run had ended before the page showed its first epoch: nothing was seen live (make the run longer)")
	}
	if state := evalJS[string](t, desk, `document.querySelector("main").dataset.runState`); state != "running" {
		t.Errorf("run state on the page while it trains: %q, want running", state)
	}

	// A connection dropped mid-run: the page reconnects naming what it has
	// (?since=), and the server sends exactly what it missed.
	evalJS[bool](t, desk, `kairoscope.stream.drop(), true`)
	waitJS[bool](t, desk, pageWait, `document.querySelector("#conn").dataset.state === "open" && kairoscope.stream.resumes === 1`)

	sent.wait(t, runID, "training_complete", smallRunWait)
	epochs := sent.epochs(runID)
	waitJS[bool](t, desk, pageWait, fmt.Sprintf(`(() => { const m = document.querySelector("main").dataset;
		return m.runState === "completed" && m.epochMessages === "%d" && document.querySelectorAll("#fold-notes li").length === %s })()`,
		len(epochs), dashboardRunFolds))
	checkTable(t, desk, epochs)
	checkReliability(t, desk, sent.reliability(runID))
	if n := evalJS[int](t, desk, `document.querySelectorAll("#chart-reliability canvas, #chart-loss canvas, #chart-auc canvas, #chart-ece canvas, #chart-coverage canvas").length`); n != 5 {
		t.Errorf("%d chart canvases for reliability, loss, AUC, ECE and coverage, want 5", n)
	}

	// Dropped again after the end: nothing is sent twice.
	evalJS[bool](t, desk, `kairoscope.stream.drop(), true`)
	waitJS[bool](t, desk, pageWait, `document.querySelector("#conn").dataset.state === "open" && kairoscope.stream.resumes === 2`)
	time.Sleep(300 * time.Millisecond) // any late frame, then a render
	if got := evalJS[string](t, desk, `document.querySelector("main").dataset.epochMessages + "/" + kairoscope.stream.replayed`); got != strconv.Itoa(len(epochs))+"/0" {
		t.Errorf("after reconnecting the page counts epochs/duplicates %s, want %d/0", got, len(epochs))
	}
	checkTable(t, desk, epochs)

	// The forecast, from /ws/predict: a Go client starts it and the page,
	// asking for the same dataset and horizon, joins it, so both must show
	// the same days.
	forecast := followPredict(t, srv.addr, "bike", dashboardHorizon)
	do(t, desk, chromedp.SetValue(chromedp.CSS("#fc-dataset"), "bike"), chromedp.SetValue(chromedp.CSS("#fc-horizon"), dashboardHorizon),
		chromedp.Click(chromedp.CSS("#forecast-go")))
	waitJS[bool](t, desk, forecastWait, `document.querySelector("#forecast-section").dataset.status === "done" || document.querySelector("#forecast-section").dataset.status === "error"`)
	if st := evalJS[string](t, desk, `document.querySelector("#forecast-section").dataset.status + ": " + document.querySelector("#forecast-status").textContent`); !strings.HasPrefix(st, "done") {
		t.Errorf("forecast: %s, want done", st)
	}
	if n := evalJS[string](t, desk, `String(document.querySelectorAll("#forecast-body tr").length) + "/" + document.querySelectorAll("#chart-forecast canvas").length`); n != dashboardHorizon+"/1" {
		t.Errorf("forecast table rows / chart canvases: %s, want %s/1", n, dashboardHorizon)
	}
	checkForecast(t, desk, forecast(t))
	do(t, desk, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	screenshot(t, desk, filepath.Join(dir, "dashboard-desktop.png"))

	// Cancel: a long run, stopped from the page.
	do(t, desk, chromedp.SetValue(chromedp.CSS(`input[name="epochs"]`), "500"), chromedp.Click(chromedp.CSS("#start")))
	waitJS[bool](t, desk, pageWait, fmt.Sprintf(`(() => { const m = document.querySelector("main").dataset;
		return m.runId !== %q && m.runState === "running" && !document.querySelector("#cancel").disabled })()`, runID))
	long := evalJS[string](t, desk, `document.querySelector("main").dataset.runId`)
	do(t, desk, chromedp.Click(chromedp.CSS("#cancel")))
	waitJS[bool](t, desk, pageWait, `document.querySelector("main").dataset.runState === "cancelled" && document.querySelector("#cancel").disabled`)
	sent.wait(t, long, "training_error", pageWait)

	// A tune started over the API: the page follows it and lists its
	// trials with the values sent.
	tune := startTune(t, srv.addr)
	sent.wait(t, tune, "training_complete", smallRunWait)
	waitJS[bool](t, desk, pageWait, fmt.Sprintf(`(() => { const m = document.querySelector("main").dataset;
		return m.runId === %q && m.runState === "completed" && !document.querySelector("#trials-section").hidden })()`, tune))
	got := evalJS[map[string]string](t, desk, `Object.fromEntries([...document.querySelectorAll("#trials-body tr[data-trial]")].map(tr => [tr.dataset.trial, tr.dataset.value]))`)
	want := sent.trialValues(tune)
	if len(want) != 2 || len(got) != len(want) {
		t.Fatalf("trials on the page %v, sent %v; want the 2 trials", got, want)
	}
	for k, v := range want {
		if !sameNumber(got[k], v) {
			t.Errorf("trial %s: page shows value %s, sent %s", k, got[k], v)
		}
	}
	do(t, desk, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	screenshot(t, desk, filepath.Join(dir, "dashboard-tune.png"))

	// A phone: a new page, opened after every run ended, reads the shown
	// runs' history on its own (?run=), shows the first run when chosen,
	// and fits the screen's width.
	phone, phoneCon := openDashboard(t, browser, fmt.Sprintf("http://%s/dashboard?token=%s", srv.addr, dashboardToken), 390, 844, true)
	waitJS[bool](t, phone, pageWait, fmt.Sprintf(`document.querySelector("main").dataset.runId === %q`, tune)) // the newest run
	do(t, phone, chromedp.SetValue(chromedp.CSS("#run-select"), runID),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#run-select").dispatchEvent(new Event("change"))`))
	waitJS[bool](t, phone, pageWait, fmt.Sprintf(`document.querySelector("main").dataset.runState === "completed" && document.querySelectorAll("#fold-notes li").length === %s`, dashboardRunFolds))
	checkTable(t, phone, epochs)
	if w := evalJS[string](t, phone, `document.documentElement.scrollWidth + "/" + window.innerWidth`); w != "390/390" {
		t.Errorf("phone page width / viewport: %s, want 390/390 (no sideways scrolling)", w)
	}
	screenshot(t, phone, filepath.Join(dir, "dashboard-phone.png"))

	con.noErrors(t)
	phoneCon.noErrors(t)
}

// openDashboard opens url in a new tab of width×height (a phone when
// mobile) and returns the tab and its console.
func openDashboard(t *testing.T, browser context.Context, url string, width, height int64, mobile bool) (context.Context, *console) {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := firstRun(tab, connectWait); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	con := &console{changed: make(chan struct{}, 1)}
	msgs := chromedp.Console(tab)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			con.add(m)
		}
	}()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait, chromedp.EmulateScale(2))
	}
	do(t, tab, chromedp.EmulateViewport(width, height, opts...), chromedp.Navigate(url))
	return tab, con
}

// do runs actions on a tab, bounded by pageWait.
func do(t *testing.T, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("in the page: %v", err)
	}
}

// evalJS evaluates expr in the page.
func evalJS[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %.80q: %v", expr, err)
	}
	return v
}

// waitJS waits up to d for expr to be truthy in the page and returns its
// value.
func waitJS[T any](t *testing.T, tab context.Context, d time.Duration, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d+time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify({main: {...document.querySelector("main").dataset}, conn: document.querySelector("#conn").textContent, notice: document.querySelector("#notice").textContent})`))
		t.Fatalf("waiting %v for %s: %v\npage: %s", d, expr, err, state)
	}
	return v
}

// tabTo presses Tab until the element with the given id has the focus.
func tabTo(t *testing.T, tab context.Context, id string) {
	t.Helper()
	for range maxTabs {
		if evalJS[string](t, tab, `document.activeElement ? document.activeElement.id : ""`) == id {
			return
		}
		do(t, tab, chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("#%s not reached in %d Tab presses", id, maxTabs)
}

func screenshot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// checkTable checks that the page's table of last epochs holds, for each
// fold, the last epoch the server sent and its exact numbers.
func checkTable(t *testing.T, tab context.Context, sent map[[2]int]map[string]json.RawMessage) {
	t.Helper()
	type row struct {
		Fold   int               `json:"fold"`
		Epoch  int               `json:"epoch"`
		Values map[string]string `json:"values"`
	}
	rows := evalJS[[]row](t, tab, `[...document.querySelectorAll("#metrics-body tr[data-fold]")].map(tr => ({
		fold: +tr.dataset.fold, epoch: +tr.dataset.epoch,
		values: Object.fromEntries([...tr.querySelectorAll("td[data-key]")].map(td => [td.dataset.key, td.dataset.value]))}))`)
	last := map[int]int{}
	for k := range sent {
		last[k[0]] = max(last[k[0]], k[1])
	}
	if len(rows) != len(last) {
		t.Errorf("%d fold rows on the page, want %d", len(rows), len(last))
	}
	for _, r := range rows {
		if want, ok := last[r.Fold]; !ok || r.Epoch != want {
			t.Errorf("fold %d: the page shows epoch %d, want the last sent, %d", r.Fold, r.Epoch, want)
			continue
		}
		msg := sent[[2]int{r.Fold, r.Epoch}]
		if len(r.Values) < 7 {
			t.Errorf("fold %d: %d metrics on the page, want 7", r.Fold, len(r.Values))
		}
		for k, shown := range r.Values {
			raw, ok := msg[k]
			if !ok {
				t.Errorf("fold %d: the page shows %s, which epoch_metrics does not carry", r.Fold, k)
				continue
			}
			if string(raw) == "null" || shown == "null" {
				if string(raw) != shown {
					t.Errorf("fold %d epoch %d %s: page %s, sent %s", r.Fold, r.Epoch, k, shown, raw)
				}
				continue
			}
			want, err1 := strconv.ParseFloat(string(raw), 64)
			got, err2 := strconv.ParseFloat(shown, 64)
			if err1 != nil || err2 != nil || got != want {
				t.Errorf("fold %d epoch %d %s: page %q, sent %s", r.Fold, r.Epoch, k, shown, raw)
			}
		}
	}
}

// reliabilityBins is the number of p_up_cal bins of the page's reliability
// diagram.
const reliabilityBins = 10

// relBin is one bin of a fold's reliability diagram.
type relBin struct {
	Count     int    `json:"count"`
	Observed  string `json:"observed"`  // the page's data-observed: a number, or "null" for an empty bin
	Predicted string `json:"predicted"` // the page's data-predicted: the bin's mean p_up_cal, or "null"
}

// checkReliability checks the page's reliability table against bins
// computed here from the prediction_delta rows the server sent.
func checkReliability(t *testing.T, tab context.Context, want map[int][]relBin) {
	t.Helper()
	type cell struct {
		Fold int `json:"fold"`
		Bin  int `json:"bin"`
		relBin
	}
	cells := evalJS[[]cell](t, tab, `[...document.querySelectorAll("#reliability-body td[data-fold]")].map(td => ({
		fold: +td.dataset.fold, bin: +td.dataset.bin, count: +td.dataset.count, observed: td.dataset.observed, predicted: td.dataset.predicted}))`)
	got := map[int][]relBin{}
	for _, c := range cells {
		if got[c.Fold] == nil {
			got[c.Fold] = make([]relBin, reliabilityBins)
		}
		if c.Bin < 0 || c.Bin >= reliabilityBins {
			t.Fatalf("reliability table: bin %d of fold %d", c.Bin, c.Fold)
		}
		got[c.Fold][c.Bin] = c.relBin
	}
	if len(got) != len(want) {
		t.Errorf("reliability table has %d folds, want %d (one per fold_complete)", len(got), len(want))
	}
	for fold, bins := range want {
		for i, w := range bins {
			g := got[fold]
			if g == nil {
				t.Errorf("fold %d: no reliability column", fold)
				break
			}
			if g[i].Count != w.Count || !sameNumber(g[i].Observed, w.Observed) || !sameNumber(g[i].Predicted, w.Predicted) {
				t.Errorf("fold %d bin %d: page %+v, want %+v from the prediction_delta rows", fold, i, g[i], w)
			}
		}
	}
}

// sameNumber says whether two numbers written by JavaScript and Go are the
// same float64 (or both "null").
func sameNumber(a, b string) bool {
	if a == b {
		return true
	}
	x, errX := strconv.ParseFloat(a, 64)
	y, errY := strconv.ParseFloat(b, 64)
	return errX == nil && errY == nil && x == y
}

// predicted is what a Go client of /ws/predict received.
type predicted struct {
	ID      string // run_id of the forecast's messages
	Payload []map[string]json.RawMessage
}

// followPredict starts a forecast from Go and returns a func that waits
// for its output.
func followPredict(t *testing.T, addr, dataset, horizon string) func(*testing.T) predicted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	url := fmt.Sprintf("ws://%s/ws/predict?dataset=%s&horizon=%s&token=%s", addr, dataset, horizon, dashboardToken)
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dialing /ws/predict: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	done := make(chan predicted, 1)
	failed := make(chan error, 1)
	go func() {
		var p predicted
		for {
			var m struct {
				Status  string                       `json:"status"`
				Message string                       `json:"message"`
				RunID   string                       `json:"run_id"`
				Payload []map[string]json.RawMessage `json:"payload"`
			}
			if err := conn.ReadJSON(&m); err != nil {
				failed <- err
				return
			}
			p.ID = m.RunID
			switch m.Status {
			case "output":
				p.Payload = m.Payload
				done <- p
				return
			case "error":
				failed <- errors.New(m.Message)
				return
			}
		}
	}()
	return func(t *testing.T) predicted {
		t.Helper()
		select {
		case p := <-done:
			return p
		case err := <-failed:
			t.Fatalf("the Go client of /ws/predict: %v", err)
		case <-time.After(forecastWait):
			t.Fatalf("no forecast output on /ws/predict within %v", forecastWait)
		}
		return predicted{}
	}
}

// checkForecast checks that the page shows the forecast the Go client got:
// the same forecast (run_id) and, day by day, the same numbers.
func checkForecast(t *testing.T, tab context.Context, want predicted) {
	t.Helper()
	if id := evalJS[string](t, tab, `document.querySelector("#forecast-section").dataset.forecastId`); id != want.ID {
		t.Errorf("the page followed forecast %q, the Go client %q: the page did not join it", id, want.ID)
	}
	type day struct{ Date, Predicted, Low, High string }
	days := evalJS[[]day](t, tab, `[...document.querySelectorAll("#forecast-body tr")].map(tr => ({
		Date: tr.dataset.date, Predicted: tr.dataset.predicted, Low: tr.dataset.low, High: tr.dataset.high}))`)
	if len(days) != len(want.Payload) {
		t.Fatalf("%d forecast days on the page, %d sent", len(days), len(want.Payload))
	}
	for i, d := range days {
		w := want.Payload[i]
		if d.Date != str(w["date"]) {
			t.Errorf("forecast day %d: page %s, sent %s", i, d.Date, w["date"])
		}
		for _, c := range []struct{ key, shown string }{{"predicted_affluence", d.Predicted}, {"conf_low", d.Low}, {"conf_high", d.High}} {
			got, err1 := strconv.ParseFloat(c.shown, 64)
			sent, err2 := strconv.ParseFloat(string(w[c.key]), 64)
			if err1 != nil || err2 != nil || got != sent {
				t.Errorf("forecast %s %s: page %q, sent %s", d.Date, c.key, c.shown, w[c.key])
			}
		}
	}
}

// wsFollower is a Go client of /ws that keeps what it reads.
type wsFollower struct {
	mu      sync.Mutex
	msgs    []map[string]json.RawMessage
	changed chan struct{}
	err     error
}

// followWS connects to /ws with the token and reads until the test ends.
func followWS(t *testing.T, addr string) *wsFollower {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, fmt.Sprintf("ws://%s/ws?deltas=final&token=%s", addr, dashboardToken), nil)
	if err != nil {
		t.Fatalf("dialing /ws: %v", err)
	}
	f := &wsFollower{changed: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := conn.ReadMessage()
			var m map[string]json.RawMessage
			if err == nil {
				err = json.Unmarshal(b, &m)
			}
			f.mu.Lock()
			if err != nil {
				f.err = err
			} else {
				f.msgs = append(f.msgs, m)
			}
			f.mu.Unlock()
			select {
			case f.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

func str(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}

func (f *wsFollower) has(runID, typ string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if str(m["run_id"]) == runID && str(m["type"]) == typ {
			return true
		}
	}
	return false
}

// wait waits up to d for a message of type typ in run runID.
func (f *wsFollower) wait(t *testing.T, runID, typ string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for !f.has(runID, typ) {
		f.mu.Lock()
		err := f.err
		f.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("reading /ws before %s of %s: %v", typ, runID, err)
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("no %s for %s on /ws within %v", typ, runID, d)
		}
	}
}

// trialValues returns the value of every hpo_trial of run runID, by trial.
func (f *wsFollower) trialValues(runID string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, m := range f.msgs {
		if str(m["run_id"]) == runID && str(m["type"]) == "hpo_trial" {
			out[string(m["trial"])] = string(m["value"])
		}
	}
	return out
}

// startTune starts a tune of 2 small trials through POST /api/runs and
// returns its run ID.
func startTune(t *testing.T, addr string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/runs", strings.NewReader(`{"kind":"tune","trials":2,"folds":2,"epochs":2}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/runs (tune): %s, %v", resp.Status, err)
	}
	return info.RunID
}

// reliability returns, for each completed fold of run runID, the
// reliability bins of its final prediction_delta's rows (all its parts,
// sent before its fold_complete): rows binned by p_up_cal in
// reliabilityBins equal bins, with the share of rows whose y_true > 0 and
// their mean p_up_cal.
func (f *wsFollower) reliability(runID string) map[int][]relBin {
	f.mu.Lock()
	defer f.mu.Unlock()
	type row struct {
		PUpCal *float64 `json:"p_up_cal"`
		YTrue  *float64 `json:"y_true"`
	}
	final := map[int][]row{}
	out := map[int][]relBin{}
	for _, m := range f.msgs {
		if str(m["run_id"]) != runID {
			continue
		}
		fold, _ := strconv.Atoi(string(m["fold_id"]))
		switch str(m["type"]) {
		case "prediction_delta":
			if string(m["final"]) != "true" {
				continue
			}
			var part []row
			json.Unmarshal(m["predictions"], &part)
			final[fold] = append(final[fold], part...)
		case "fold_complete":
			rows := final[fold]
			up := make([]int, reliabilityBins)
			sum := make([]float64, reliabilityBins)
			bins := make([]relBin, reliabilityBins)
			for _, r := range rows {
				if r.PUpCal == nil || r.YTrue == nil {
					continue
				}
				i := min(reliabilityBins-1, max(0, int(math.Floor(*r.PUpCal*reliabilityBins))))
				bins[i].Count++
				sum[i] += *r.PUpCal
				if *r.YTrue > 0 {
					up[i]++
				}
			}
			for i := range bins {
				bins[i].Observed, bins[i].Predicted = "null", "null"
				if n := float64(bins[i].Count); n > 0 {
					bins[i].Observed = strconv.FormatFloat(float64(up[i])/n, 'g', -1, 64)
					bins[i].Predicted = strconv.FormatFloat(sum[i]/n, 'g', -1, 64)
				}
			}
			out[fold] = bins
		}
	}
	return out
}

// epochs returns the epoch_metrics of run runID by fold and epoch.
func (f *wsFollower) epochs(runID string) map[[2]int]map[string]json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[[2]int]map[string]json.RawMessage{}
	for _, m := range f.msgs {
		if str(m["run_id"]) != runID || str(m["type"]) != "epoch_metrics" {
			continue
		}
		fold, _ := strconv.Atoi(string(m["fold_id"]))
		epoch, _ := strconv.Atoi(string(m["epoch"]))
		out[[2]int{fold, epoch}] = m
	}
	return out
}
