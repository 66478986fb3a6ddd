package ws

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// request sends method path to ts with body and headers ("Host" sets the
// Host header) and returns the status, the headers and the error text.
func request(t *testing.T, ts *testServer, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, resp.Header, e.Error
}

// dialWith opens path with headers and returns the handshake's status.
func dialWith(t *testing.T, ts *testServer, path string, hdr ...string) int {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+path, h)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return resp.StatusCode
}

// The Host header must be a loopback name, an IP address or an allowed
// name, on every route: a rebound page's name is refused before anything
// runs, and the error says which flag allows it.
func TestHostCheck(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, func(c *Config) { c.AllowedHosts = []string{"kairo.example", ".corp.example"} })
	for host, want := range map[string]int{
		"localhost:8000": 200, "LOCALHOST": 200, "app.localhost:1": 200, "127.0.0.1:9": 200, "[::1]:8000": 200, "10.1.2.3": 200, "[fe80::1]:80": 200,
		"kairo.example": 200, "KAIRO.example:8000": 200, "a.corp.example": 200,
		"evil.example:8000": 403, "localhost.evil.example": 403, "corp.example": 403, "kairo.example.evil": 403,
	} {
		for _, path := range []string{"/", "/dashboard", "/api/runs"} {
			code, _, msg := request(t, ts, "GET", path, "", "Host", host)
			if code != want {
				t.Errorf("GET %s with Host %q: %d, want %d", path, host, code, want)
			}
			if want == 403 && !strings.Contains(msg, "--allowed-hosts") {
				t.Errorf("Host %q refused with %q: want it to name --allowed-hosts", host, msg)
			}
		}
	}
	if code := dialWith(t, ts, "/ws", "Host", "evil.example"); code != 403 {
		t.Errorf("/ws with a rebound Host: %d, want 403", code)
	}
	if code, _, _ := request(t, ts, "POST", "/api/runs", `{}`, "Host", "evil.example", "Content-Type", "application/json"); code != 403 {
		t.Errorf("POST with a rebound Host: %d", code)
	}
	open := newTestServer(t, nil, func(c *Config) { c.AllowedHosts = []string{"*"} })
	if code, _, _ := request(t, open, "GET", "/", "", "Host", "anything.example"); code != 200 {
		t.Errorf("--allowed-hosts '*': %d", code)
	}
}

// A request carrying a foreign Origin is refused on every endpoint and on
// the WebSocket handshakes, with no CORS header; the server's own origin,
// pages on localhost and listed origins pass.
func TestOriginCheck(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, func(c *Config) { c.AllowedOrigins = []string{"https://dash.example"} })
	self := ts.URL // http://127.0.0.1:PORT
	for origin, want := range map[string]bool{
		self: true, "http://localhost:3000": true, "http://127.0.0.1:5500": true, "https://app.localhost": true, "https://dash.example": true,
		"https://evil.example": false, "null": false, "http://127.0.0.1.evil.example": false, "file://": false, "https://dash.example.evil": false,
	} {
		code, hdr, msg := request(t, ts, "GET", "/api/runs", "", "Origin", origin)
		if (code == 200) != want {
			t.Errorf("GET /api/runs from %q: %d, want allowed %v", origin, code, want)
		}
		if !want && (hdr.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(msg, "--allowed-origins")) {
			t.Errorf("refused %q: CORS %q, error %q", origin, hdr.Get("Access-Control-Allow-Origin"), msg)
		}
		for _, path := range []string{"/ws", "/ws?run=run_000000000000", "/ws/predict?horizon=0"} {
			if code := dialWith(t, ts, path, "Origin", origin); (code != 403) != want {
				t.Errorf("%s from %q: %d, want allowed %v", path, origin, code, want)
			}
		}
		if !want {
			for _, m := range []string{"POST", "DELETE"} {
				path := "/api/runs"
				if m == "DELETE" {
					path += "/run_000000000000"
				}
				if code, _, _ := request(t, ts, m, path, `{}`, "Origin", origin, "Content-Type", "application/json"); code != 403 {
					t.Errorf("%s %s from %q: %d, want 403", m, path, origin, code)
				}
			}
		}
	}
	_, hdr, _ := request(t, ts, "GET", "/api/runs", "", "Origin", "https://dash.example")
	if hdr.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Errorf("a listed origin gets no CORS header: %v", hdr)
	}
	if _, hdr, _ := request(t, ts, "GET", "/api/runs", "", "Origin", self); hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the server's own origin gets CORS headers: %v", hdr)
	}
	// A listed origin's preflight is answered; a foreign one's is not.
	code, hdr, _ := request(t, ts, "OPTIONS", "/api/runs/run_000000000000", "", "Origin", "https://dash.example", "Access-Control-Request-Method", "DELETE")
	if code != http.StatusNoContent || !strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "DELETE") || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", code, hdr)
	}
	if code, hdr, _ := request(t, ts, "OPTIONS", "/api/runs", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); code != 403 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", code, hdr)
	}
	if code, _, _ := request(t, ts, "GET", "/api/runs", ""); code != 200 {
		t.Errorf("no Origin (a program): %d", code)
	}
	if runs := listOf(t, ts); len(runs) != 0 {
		t.Errorf("refused requests started runs: %v", runs)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(ts.srv.Collector())
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `kairoscope_http_refused_total{reason="origin"}`) {
		t.Errorf("no refused origin counted in /metrics")
	}
}

// A cross-site request without Origin (an <img> or <script> of a foreign
// page) is refused, a navigation to the dashboard is not.
func TestFetchMetadata(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	if code, _, _ := request(t, ts, "GET", "/api/runs", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"); code != 403 {
		t.Errorf("a foreign page's <img>: %d", code)
	}
	if code, _, _ := request(t, ts, "GET", "/dashboard", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"); code != 200 {
		t.Errorf("a link to the dashboard: %d", code)
	}
	if code, _, _ := request(t, ts, "GET", "/api/runs", "", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"); code != 200 {
		t.Errorf("the dashboard's own fetch: %d", code)
	}
}

// POST /api/runs takes JSON only: the bodies a page may send without a
// preflight are refused with 415 and start nothing.
func TestRunsNeedJSON(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"} {
		code, _, msg := request(t, ts, "POST", "/api/runs", `{"epochs":2}`, "Content-Type", ct)
		if code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "application/json") {
			t.Errorf("Content-Type %q: %d %q, want 415", ct, code, msg)
		}
	}
	if runs := listOf(t, ts); len(runs) != 0 {
		t.Fatalf("refused bodies started runs: %v", runs)
	}
	if code, _, msg := request(t, ts, "POST", "/api/runs", `{"epochs":2}`, "Content-Type", "application/json; charset=utf-8"); code != http.StatusAccepted {
		t.Errorf("JSON with a charset: %d %s", code, msg)
	}
}

// listOf returns GET /api/runs.
func listOf(t *testing.T, ts *testServer) []map[string]any {
	t.Helper()
	resp, err := http.Get(ts.URL + "/api/runs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var runs []map[string]any
	json.NewDecoder(resp.Body).Decode(&runs)
	return runs
}
