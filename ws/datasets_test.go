package ws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// valueCSV is a daily date,value series of n rows from 2020-01-01.
func valueCSV(n int) string {
	var b strings.Builder
	b.WriteString("date,value\n")
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, "%s,%d\n", d.AddDate(0, 0, i).Format(time.DateOnly), 100+i%17)
	}
	return b.String()
}

// rowsAfter is CSV rows for the n days after valueCSV(from)'s last one.
func rowsAfter(from, n int) string {
	var b strings.Builder
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, from)
	for i := range n {
		fmt.Fprintf(&b, "%s,%d\n", d.AddDate(0, 0, i).Format(time.DateOnly), 7+i)
	}
	return b.String()
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// newDatasetServer is a test server whose datasets folder is a temporary
// one, returned with it.
func newDatasetServer(t *testing.T, jobs agent.Jobs, maxBytes int64) (*testServer, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "datasets")
	store, err := datasets.Open(dir, datasets.Options{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, jobs, func(c *Config) { c.Datasets = store }), dir
}

// call makes one request and returns the status, the body and the response.
func call(t *testing.T, method, url, contentType, body string) (int, []byte, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp
}

func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[strings.TrimPrefix(p, dir)] = string(b)
		}
		return err
	})
	return out
}

// Upload, list, fetch (CSV as stored, with its hash as ETag; JSON; since),
// replace and delete, over HTTP.
func TestDatasetsAPI(t *testing.T) {
	ts, dir := newDatasetServer(t, &fakeJobs{run: trainScript}, 0)
	body := valueCSV(40)
	code, b, resp := call(t, "POST", ts.URL+"/api/datasets?name=visits", "text/csv", body)
	var info datasets.Info
	if json.Unmarshal(b, &info); code != http.StatusCreated || info.Rows != 40 || info.Hash != sha(body) || resp.Header.Get("Location") != "/api/datasets/visits" {
		t.Fatalf("upload: %d %s", code, b)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "visits.csv")); string(got) != body {
		t.Errorf("the folder holds %q", got)
	}
	code, b, _ = call(t, "GET", ts.URL+"/api/datasets", "", "")
	var list []datasets.Info
	if json.Unmarshal(b, &list); code != 200 || len(list) != 4 || list[3].Name != "visits" || list[3].Last != "2020-02-09" || list[0].Name != "bike" {
		t.Fatalf("list: %d %s", code, b)
	}
	code, b, resp = call(t, "GET", ts.URL+"/api/datasets/visits", "", "")
	if code != 200 || string(b) != body || resp.Header.Get("ETag") != `"`+sha(body)+`"` || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("GET csv: %d %v %q", code, resp.Header, b)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/datasets/visits", nil)
	req.Header.Set("If-None-Match", `"`+sha(body)+`"`)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %v %v", r.StatusCode, err)
	}
	code, b, _ = call(t, "GET", ts.URL+"/api/datasets/visits?since=2020-02-07", "", "")
	if code != 200 || string(b) != "date,value\n2020-02-08,104\n2020-02-09,105\n" {
		t.Errorf("GET csv since: %d %q", code, b)
	}
	code, b, resp = call(t, "GET", ts.URL+"/api/datasets/visits?format=json&since=2020-02-07", "", "")
	var series struct {
		Name, Hash, Since string
		Data              []map[string]any
	}
	if json.Unmarshal(b, &series); code != 200 || series.Hash != sha(body) || series.Since != "2020-02-07" || len(series.Data) != 2 ||
		series.Data[1]["date"] != "2020-02-09" || series.Data[1]["value"] != 105.0 || resp.Header.Get("X-Dataset-Hash") != sha(body) {
		t.Errorf("GET json since: %d %s", code, b)
	}
	code, b, _ = call(t, "GET", ts.URL+"/api/datasets/sp500?format=json", "", "")
	if json.Unmarshal(b, &series); code != 200 || len(series.Data) != 5105 || series.Data[0]["open"] != 1469.25 {
		t.Errorf("GET sp500 json: %d, %d rows", code, len(series.Data))
	}
	for _, q := range []string{"?since=yesterday", "?format=xml"} {
		if code, b, _ := call(t, "GET", ts.URL+"/api/datasets/visits"+q, "", ""); code != 400 {
			t.Errorf("%s: %d %s", q, code, b)
		}
	}
	if code, _, _ := call(t, "GET", ts.URL+"/api/datasets/nope", "", ""); code != 404 {
		t.Errorf("GET nope: %d", code)
	}

	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets?name=visits", "text/csv", valueCSV(50)); code != http.StatusConflict || !strings.Contains(string(b), "replace") {
		t.Errorf("second upload: %d %s", code, b)
	}
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets?name=visits&replace=true", "text/csv", valueCSV(50)); code != 200 || !strings.Contains(string(b), `"rows": 50`) {
		t.Errorf("replace: %d %s", code, b)
	}
	if code, b, _ := call(t, "PUT", ts.URL+"/api/datasets/visits", "text/csv", valueCSV(60)); code != 200 || !strings.Contains(string(b), `"rows": 60`) {
		t.Errorf("PUT: %d %s", code, b)
	}
	if code, _, _ := call(t, "PUT", ts.URL+"/api/datasets/other", "text/csv", valueCSV(60)); code != 201 {
		t.Errorf("PUT new: %d", code)
	}
	if code, b, _ := call(t, "DELETE", ts.URL+"/api/datasets/visits", "", ""); code != http.StatusNoContent || len(b) != 0 {
		t.Errorf("DELETE: %d %s", code, b)
	}
	if code, _, _ := call(t, "DELETE", ts.URL+"/api/datasets/visits", "", ""); code != 404 {
		t.Errorf("DELETE twice: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "visits.csv")); err == nil {
		t.Error("visits.csv is still in the folder")
	}
}

// multipart builds the dashboard's upload form.
func multipartForm(t *testing.T, fields map[string]string, filename, content string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range []string{"name", "replace"} {
		if v, ok := fields[k]; ok {
			mw.WriteField(k, v)
		}
	}
	fw, _ := mw.CreateFormFile("file", filename)
	io.WriteString(fw, content)
	mw.Close()
	return mw.FormDataContentType(), b.String()
}

// The dashboard's form: a name field (or the file's name) and the file.
func TestDatasetsUploadForm(t *testing.T) {
	ts, dir := newDatasetServer(t, &fakeJobs{run: trainScript}, 0)
	ct, body := multipartForm(t, map[string]string{"name": "fromform"}, "whatever.csv", valueCSV(40))
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets", ct, body); code != 201 || !strings.Contains(string(b), `"name": "fromform"`) {
		t.Errorf("form: %d %s", code, b)
	}
	ct, body = multipartForm(t, nil, "byfile.csv", valueCSV(40))
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets", ct, body); code != 201 || !strings.Contains(string(b), `"name": "byfile"`) {
		t.Errorf("named by its file: %d %s", code, b)
	}
	ct, body = multipartForm(t, map[string]string{"name": "fromform", "replace": "on"}, "x.csv", valueCSV(45))
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets", ct, body); code != 200 || !strings.Contains(string(b), `"rows": 45`) {
		t.Errorf("form replace: %d %s", code, b)
	}
	ct, body = multipartForm(t, map[string]string{"name": "bad"}, "x.csv", "date,value\n2020-01-01,1\n2020-01-02,oops\n")
	code, b, _ := call(t, "POST", ts.URL+"/api/datasets", ct, body)
	var e struct {
		Error, File, Problem, Column string
		Line                         int
	}
	if json.Unmarshal(b, &e); code != 400 || e.File != "bad.csv" || e.Line != 3 || e.Column != "value" || e.Problem != `cannot parse "oops" as a number` {
		t.Errorf("bad form: %d %s", code, b)
	}
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets", "text/csv", valueCSV(40)); code != 400 || !strings.Contains(string(b), "name the dataset") {
		t.Errorf("no name: %d %s", code, b)
	}
	if n := len(files(t, dir)); n != 2 {
		t.Errorf("folder: %v", slices.Collect(maps.Keys(files(t, dir))))
	}
}

// Bad uploads are refused with their status and a JSON error naming the
// line and problem, and change nothing in the folder.
func TestDatasetsRefuseBadUploads(t *testing.T) {
	ts, dir := newDatasetServer(t, &fakeJobs{run: trainScript}, 4096)
	call(t, "POST", ts.URL+"/api/datasets?name=good", "text/csv", valueCSV(40))
	before := files(t, dir)
	rows := valueCSV(40)
	for _, c := range []struct {
		method, path, body string
		code               int
		line               int
		want               string
	}{
		{"POST", "/api/datasets?name=good&replace=1", "date,val\n2020-01-01,x\n", 400, 2, `cannot parse "x" as a number`},
		{"POST", "/api/datasets?name=good&replace=1", "day,value\n2020-01-01,1\n", 400, 1, `missing column "date"`},
		{"POST", "/api/datasets?name=good&replace=1", strings.Replace(rows, "2020-01-03", "2020-01-02", 1), 400, 4, "repeats line 3"},
		{"POST", "/api/datasets?name=good&replace=1", strings.Replace(rows, "2020-01-03", "2020-01-01", 1), 400, 4, "comes before"},
		{"POST", "/api/datasets?name=good&replace=1", strings.Replace(rows, "2020-01-03", "3 Jan 2020", 1), 400, 4, "as a date"},
		{"POST", "/api/datasets?name=good&replace=1", strings.Replace(rows, "2020-01-03,102", "2020-01-03,NaN", 1), 400, 4, "not a finite number"},
		{"POST", "/api/datasets?name=good&replace=1", strings.Replace(rows, "2020-01-03,102", "2020-01-03,-Inf", 1), 400, 4, "not a finite number"},
		{"POST", "/api/datasets?name=good&replace=1", valueCSV(10), 400, 0, "at least 30 are needed"},
		{"POST", "/api/datasets?name=good&replace=1", valueCSV(300), 413, 0, "at most 4096 bytes"},
		{"PUT", "/api/datasets/good", valueCSV(300), 413, 0, "at most 4096 bytes"},
		{"POST", "/api/datasets?name=../etc/passwd", rows, 400, 0, "never a path"},
		{"POST", "/api/datasets?name=Good", rows, 400, 0, "dataset name"},
		{"POST", "/api/datasets?name=good", rows, 409, 0, "replace it"},
		{"POST", "/api/datasets?name=bike&replace=1", rows, 403, 0, "embedded"},
		{"PUT", "/api/datasets/sp500", rows, 403, 0, "embedded"},
		{"DELETE", "/api/datasets/bike", "", 403, 0, "embedded"},
		{"POST", "/api/datasets/bike/rows", "2013-01-01,1\n", 403, 0, "embedded"},
	} {
		code, b, _ := call(t, c.method, ts.URL+c.path, "text/csv", c.body)
		var e struct {
			Error string
			Line  int
		}
		if json.Unmarshal(b, &e); code != c.code || e.Line != c.line || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s: %d %s, want %d, line %d and %q", c.method, c.path, code, b, c.code, c.line, c.want)
		}
	}
	if after := files(t, dir); !maps.Equal(before, after) {
		t.Errorf("the folder changed: %v", slices.Collect(maps.Keys(after)))
	}
}

// readChart reads /ws until a chart_update, validating every message.
func readChart(t *testing.T, ts *testServer, c *websocket.Conn) schema.ChartUpdate {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading /ws: %v", err)
		}
		if err := schema.Validate(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
		var head struct{ Type string }
		json.Unmarshal(b, &head)
		if head.Type != schema.TypeChartUpdate {
			continue
		}
		var m schema.ChartUpdate
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"seq"`)) {
			t.Errorf("chart_update carries a seq: %.200s", b)
		}
		return m
	}
}

// Every append is broadcast on /ws as chart_update, in parts of at most
// MaxChartRows rows; a bad append is refused and broadcasts nothing.
func TestDatasetsAppendBroadcastsChartUpdate(t *testing.T) {
	ts, dir := newDatasetServer(t, &fakeJobs{run: trainScript}, 0)
	call(t, "POST", ts.URL+"/api/datasets?name=visits", "text/csv", valueCSV(40))
	c := ts.dial(t, "/ws")
	waitFor(t, "the /ws client", func() bool { return ts.srv.runs.Clients() == 1 })

	code, b, _ := call(t, "POST", ts.URL+"/api/datasets/visits/rows", "text/csv", "2020-02-10,7\n2020-02-11,8\n")
	var res AppendResult
	if json.Unmarshal(b, &res); code != 200 || res.Appended != 2 || res.PreviousHash != sha(valueCSV(40)) || res.Info.Rows != 42 {
		t.Fatalf("append: %d %s", code, b)
	}
	m := readChart(t, ts, c)
	if m.Dataset != "visits" || m.Target != "value" || m.OHLCV || len(m.Rows) != 2 || m.Rows[1].Date != "2020-02-11" ||
		string(m.Rows[1].Values[0].Value) != "8" || m.Hash != res.Info.Hash || m.PreviousHash != res.PreviousHash ||
		m.TotalRows != 42 || m.Last != "2020-02-11" || m.Part != 1 || m.Parts != 1 || m.Appended != 2 {
		t.Errorf("chart_update %+v", m)
	}
	file, _ := os.ReadFile(filepath.Join(dir, "visits.csv"))
	if m.Hash != sha(string(file)) {
		t.Error("chart_update's hash is not the file's")
	}

	// A bad append: refused, nothing broadcast (the next message is the
	// next good append's).
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets/visits/rows", "application/json", `[{"date":"2020-02-01","value":1}]`); code != 400 || !strings.Contains(string(b), `"row": 1`) {
		t.Errorf("bad append: %d %s", code, b)
	}
	n := 2*schema.MaxChartRows + 5
	code, b, _ = call(t, "POST", ts.URL+"/api/datasets/visits/rows", "", rowsAfter(42, n))
	if code != 200 {
		t.Fatalf("big append: %d %s", code, b)
	}
	var got []schema.ChartRow
	for part := 1; part <= 3; part++ {
		m := readChart(t, ts, c)
		if m.Part != part || m.Parts != 3 || m.Appended != n || m.TotalRows != 42+n || m.PreviousHash != res.Info.Hash {
			t.Fatalf("part %d: %d of %d, %d appended, previous %s", part, m.Part, m.Parts, m.Appended, m.PreviousHash)
		}
		got = append(got, m.Rows...)
	}
	if len(got) != n || got[0].Date != "2020-02-12" {
		t.Errorf("%d rows in the parts, want %d", len(got), n)
	}
	// JSON, by Content-Type.
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets/visits/rows", "application/json", fmt.Sprintf(`{"rows":[{"date":%q,"value":1.5}]}`, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 42+n).Format(time.DateOnly))); code != 200 {
		t.Fatalf("JSON append: %d %s", code, b)
	}
	if m := readChart(t, ts, c); len(m.Rows) != 1 || string(m.Rows[0].Values[0].Value) != "1.5" {
		t.Errorf("JSON chart_update %+v", m)
	}
}

// A run is given the version its dataset had when it was accepted: a copy
// that an append does not touch, which the dataset cannot be deleted under
// while the run is queued or running; a run started after the append gets
// the new rows.
func TestRunsPinTheirVersion(t *testing.T) {
	type seen struct {
		data  worker.Data
		bytes string
	}
	specs := make(chan seen, 4)
	release := make(chan struct{})
	jobs := &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		<-release
		b, _ := os.ReadFile(spec.Data.Path)
		specs <- seen{*spec.Data, string(b)}
		return trainScript(ctx, spec, emit)
	}}
	ts, _ := newDatasetServer(t, jobs, 0)
	call(t, "POST", ts.URL+"/api/datasets?name=visits", "text/csv", valueCSV(40))
	code, first := postRun(t, ts, `{"dataset":"visits"}`)
	if code != 202 {
		t.Fatalf("run: %d %v", code, first)
	}
	if code, b, _ := call(t, "POST", ts.URL+"/api/datasets/visits/rows", "text/csv", rowsAfter(40, 1)); code != 200 {
		t.Fatalf("append: %d %s", code, b)
	}
	_, second := postRun(t, ts, `{"dataset":"visits"}`)
	if code, b, _ := call(t, "DELETE", ts.URL+"/api/datasets/visits", "", ""); code != 409 || !strings.Contains(string(b), "2 queued or running") {
		t.Errorf("delete while used: %d %s", code, b)
	}
	close(release)
	for i, want := range []string{valueCSV(40), valueCSV(40) + rowsAfter(40, 1)} {
		s := <-specs
		if s.data.Name != "visits" || s.data.Hash != sha(want) || s.bytes != want {
			t.Errorf("run %d got %+v with %d bytes, want the version of %d bytes", i, s.data, len(s.bytes), len(want))
		}
	}
	waitState(t, ts, first["run_id"].(string), runlog.StateCompleted)
	waitState(t, ts, second["run_id"].(string), runlog.StateCompleted)
	waitFor(t, "the delete once the runs ended", func() bool {
		code, _, _ := call(t, "DELETE", ts.URL+"/api/datasets/visits", "", "")
		return code == http.StatusNoContent
	})
	for body, want := range map[string]int{`{"dataset":"visits"}`: 400, `{"dataset":"nope"}`: 400} {
		if code, m := postRun(t, ts, body); code != want {
			t.Errorf("%s: %d %v", body, code, m)
		}
	}
}

// A forecast asked for after an append does not join one of the old
// version: it forecasts from the new rows.
func TestPredictPinsTheVersion(t *testing.T) {
	release := make(chan struct{})
	hashes := make(chan string, 4)
	jobs := &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		hashes <- spec.Data.Hash
		return forecastScript(release)(ctx, spec, emit)
	}}
	ts, _ := newDatasetServer(t, jobs, 0)
	call(t, "POST", ts.URL+"/api/datasets?name=visits", "text/csv", valueCSV(40))
	a := ts.dial(t, "/ws/predict?dataset=visits&horizon=5")
	b := ts.dial(t, "/ws/predict?dataset=visits&horizon=5") // shares a's forecast
	if h := <-hashes; h != sha(valueCSV(40)) {
		t.Errorf("first forecast on %s", h)
	}
	call(t, "POST", ts.URL+"/api/datasets/visits/rows", "text/csv", rowsAfter(40, 1))
	c := ts.dial(t, "/ws/predict?dataset=visits&horizon=5")
	close(release)
	for _, conn := range []*websocket.Conn{a, b, c} {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, m, err := conn.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(m, []byte(`"status":"output"`)) {
				break
			}
		}
	}
	if h := <-hashes; h != sha(valueCSV(40)+rowsAfter(40, 1)) {
		t.Errorf("the forecast after the append is on %s", h)
	}
	if n := jobs.calls.Load(); n != 2 {
		t.Errorf("%d forecasts, want 2 (a and b share one)", n)
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/predict?dataset=nope", nil); err == nil || resp.StatusCode != 400 {
		t.Errorf("unknown dataset: %v", err)
	}
}
