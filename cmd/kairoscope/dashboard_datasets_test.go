//go:build linux

package main

// The dashboard's Data panel end to end, in headless Chromium against the
// built server: a bad upload shows the server's error in place, a good one
// is drawn, rows appended over the API reach the chart live through
// chart_update, and a forecast of the appended data is drawn over it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// dashboardSeriesRows is how much of the bike data is uploaded; the rest
// is appended.
const dashboardSeriesRows = 700

func TestE2EDashboardDatasets(t *testing.T) {
	requireChromium(t)
	srv := startServerWith(t, []string{"KAIROSCOPE_TOKEN=" + dashboardToken})
	sent := followWS(t, srv.addr)
	browser := startBrowser(t)
	dir := artifactsDir(t)

	bike, err := os.ReadFile("../../datasets/bike.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bike, []byte("\n"))
	files := t.TempDir()
	good := filepath.Join(files, "mine.csv")
	bad := filepath.Join(files, "broken.csv")
	os.WriteFile(good, bytes.Join(lines[:dashboardSeriesRows+1], nil), 0o644)
	os.WriteFile(bad, []byte("date,value\n2011-01-01,985\n2011-01-02,eight hundred\n"), 0o644)

	page, con := openDashboard(t, browser, fmt.Sprintf("http://%s/dashboard?token=%s", srv.addr, dashboardToken), 1280, 900, false)
	waitJS[bool](t, page, pageWait, `document.querySelector("#conn").dataset.state === "open" && document.querySelector("#data-section").dataset.rows === "731"`)

	// A bad file: the server's error, with its line, in place; nothing stored.
	do(t, page, chromedp.SetUploadFiles(chromedp.CSS("#up-file"), []string{bad}),
		chromedp.SetValue(chromedp.CSS("#up-name"), "mine"), chromedp.Click(chromedp.CSS("#upload-go")))
	msg := waitJS[string](t, page, pageWait, `document.querySelector("#upload-status").dataset.result === "error" && document.querySelector("#upload-status").textContent`)
	if !strings.Contains(msg, `mine.csv:3: column "value": cannot parse "eight hundred" as a number`) {
		t.Errorf("the page says %q, want the server's file, line and problem", msg)
	}
	if line := evalJS[string](t, page, `document.querySelector("#upload-status").dataset.line`); line != "3" {
		t.Errorf("data-line %q, want 3", line)
	}
	if n := evalJS[int](t, page, `document.querySelectorAll("#ds-select option[value=mine]").length`); n != 0 {
		t.Error("the bad upload is listed")
	}

	// A good file, named by its file: stored, chosen and drawn as a line.
	do(t, page, chromedp.Evaluate[chromedp.Void](`document.querySelector("#up-name").value = ""`),
		chromedp.SetUploadFiles(chromedp.CSS("#up-file"), []string{good}))
	if name := evalJS[string](t, page, `document.querySelector("#up-name").value`); name != "mine" {
		t.Errorf("the name field says %q after choosing mine.csv", name)
	}
	do(t, page, chromedp.Click(chromedp.CSS("#upload-go")))
	waitJS[bool](t, page, pageWait, fmt.Sprintf(`(() => { const d = document.querySelector("#data-section").dataset;
		return d.dataset === "mine" && d.rows === "%d" && d.kind === "line" })()`, dashboardSeriesRows))
	if st := evalJS[string](t, page, `document.querySelector("#upload-status").textContent`); !strings.Contains(st, "Stored mine: 700 rows") {
		t.Errorf("upload status %q", st)
	}
	if fc := evalJS[string](t, page, `document.querySelector("#fc-dataset").value + "/" + document.querySelector("#f-dataset").value`); fc != "mine/mine" {
		t.Errorf("the forecast and run forms use %s, want the dataset picked", fc)
	}

	// Rows appended over the API reach the chart live.
	appended := string(bytes.Join(lines[dashboardSeriesRows+1:], nil))
	if code, body := postToken(t, srv.addr, "/api/datasets/mine/rows", appended); code != 200 {
		t.Fatalf("append: %d %s", code, body)
	}
	waitJS[bool](t, page, pageWait, `(() => { const d = document.querySelector("#data-section").dataset;
		return d.rows === "731" && d.last === "2012-12-31" && d.updates === "1" })()`)
	update := sent.waitChart(t, "mine")
	if h := evalJS[string](t, page, `document.querySelector("#data-section").dataset.hash`); h != update.Hash {
		t.Errorf("the page holds version %s, chart_update announced %s", h, update.Hash)
	}
	last := update.Rows[len(update.Rows)-1]
	shown := evalJS[string](t, page, `document.querySelector('#series-body tr[data-date="2012-12-31"] td[data-key=value]').dataset.value`)
	if want, _ := last["value"].(float64); shown != strconv.FormatFloat(want, 'g', -1, 64) || last["date"] != "2012-12-31" {
		t.Errorf("the table's last row shows %s, chart_update sent %v", shown, last)
	}

	// A forecast of the appended data, drawn over the series.
	do(t, page, chromedp.SetValue(chromedp.CSS("#fc-horizon"), "7"), chromedp.Click(chromedp.CSS("#forecast-go")))
	waitJS[bool](t, page, forecastWait, `["done", "error"].includes(document.querySelector("#forecast-section").dataset.status)`)
	got := evalJS[map[string]string](t, page, `({...document.querySelector("#data-section").dataset})`)
	if got["forecastDays"] != "7" || got["forecastHash"] != update.Hash {
		t.Errorf("after the forecast the Data panel shows %v, want 7 days forecast from version %s", got, update.Hash)
	}
	if n := evalJS[int](t, page, `document.querySelectorAll("#chart-series canvas").length`); n != 1 {
		t.Errorf("%d series chart canvases", n)
	}
	do(t, page, chromedp.Evaluate[chromedp.Void](`document.querySelector("#data-section").scrollIntoView()`))
	screenshot(t, page, filepath.Join(dir, "dashboard-data.png"))

	// A dropped connection: what is appended meanwhile still arrives
	// (live, or loaded with ?since= on reconnecting).
	evalJS[bool](t, page, `kairoscope.stream.drop(), true`)
	if code, body := postToken(t, srv.addr, "/api/datasets/mine/rows", "2013-01-01,1234\n"); code != 200 {
		t.Fatalf("append: %d %s", code, body)
	}
	waitJS[bool](t, page, pageWait, `document.querySelector("#conn").dataset.state === "open" && document.querySelector("#data-section").dataset.rows === "732"`)

	// OHLCV: candles.
	do(t, page, chromedp.SetValue(chromedp.CSS("#ds-select"), "sp500"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#ds-select").dispatchEvent(new Event("change"))`))
	waitJS[bool](t, page, pageWait, `(() => { const d = document.querySelector("#data-section").dataset; return d.dataset === "sp500" && d.kind === "candles" && d.rows === "5105" })()`)
	if del := evalJS[bool](t, page, `document.querySelector("#ds-delete").disabled`); !del {
		t.Error("the embedded sp500 can be deleted from the page")
	}
	do(t, page, chromedp.Evaluate[chromedp.Void](`document.querySelector("#data-section").scrollIntoView()`))
	screenshot(t, page, filepath.Join(dir, "dashboard-candles.png"))
	// The console: nothing but the browser's note of the refused upload.
	refused := 0
	for _, m := range con.messages() {
		switch {
		case !isError(m):
		case m.Source == "network" && strings.HasSuffix(m.URL, "/api/datasets") && strings.Contains(m.Text, "400"):
			refused++
		default:
			t.Errorf("console %s (%s:%d)", m, m.URL, m.Line+1)
		}
	}
	if refused != 1 {
		t.Errorf("%d refused uploads in the console, want the one bad file", refused)
	}
}

// postToken POSTs CSV rows with the dashboard's token.
func postToken(t *testing.T, addr, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := (&http.Client{Timeout: httpTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// chartSent is a chart_update as the Go client read it.
type chartSent struct {
	Hash string
	Rows []map[string]any
}

// waitChart waits for a chart_update of dataset and returns the last one.
func (f *wsFollower) waitChart(t *testing.T, dataset string) chartSent {
	t.Helper()
	deadline := time.After(pageWait)
	for {
		f.mu.Lock()
		var found *chartSent
		for _, m := range f.msgs {
			if str(m["type"]) == "chart_update" && str(m["dataset"]) == dataset {
				c := chartSent{Hash: str(m["hash"])}
				json.Unmarshal(m["rows"], &c.Rows)
				found = &c
			}
		}
		f.mu.Unlock()
		if found != nil {
			return *found
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("no chart_update of %s on /ws within %v", dataset, pageWait)
		}
	}
}
