//go:build linux

package main

// Hostile pages in headless Chromium against the built server, with no
// token (the default): a page of another site, and a DNS-rebound page
// (its name resolving to this machine, on the server's very port). Neither
// can start, cancel or read anything; the server's own count of refused
// requests shows it refused them itself, not only the browser.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// hostileBrowser starts headless Chromium resolving evil.test and
// rebind.test to 127.0.0.1, as an attacker's DNS would.
func hostileBrowser(t *testing.T) context.Context {
	t.Helper()
	requireChromium(t)
	var output syncBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()), chromedp.CombinedOutput(&output))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := firstRun(ctx, browserWait); err != nil {
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, output.String())
	}
	return ctx
}

// attackJS tries everything a page can against base (the server's URL)
// and run (a running run's ID), and records each outcome in
// window.results: "read" means the page got a body it could read.
const attackJS = `
window.results = {};
window.done = (async () => {
  const r = window.results, base = BASE, run = RUN;
  const note = (k, v) => { r[k] = String(v); };
  const tryFetch = async (k, url, opts) => {
    try {
      const resp = await fetch(url, opts);
      if (resp.type === "opaque") return note(k, "opaque");
      const body = await resp.text();
      note(k, "read " + resp.status + " " + body.slice(0, 80));
    } catch (e) { note(k, "blocked " + e.name); }
  };
  await tryFetch("start_text_plain", base + "/api/runs", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"epochs":3}'});
  await tryFetch("start_blob", base + "/api/runs", {method: "POST", mode: "no-cors", body: new Blob(['{"epochs":3}'])});
  await tryFetch("start_json", base + "/api/runs", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"epochs":3}'});
  note("start_beacon", navigator.sendBeacon(base + "/api/runs", new Blob(['{"epochs":3}'], {type: "text/plain"})));
  await tryFetch("cancel", base + "/api/runs/" + run, {method: "DELETE"});
  await tryFetch("cancel_no_cors", base + "/api/runs/" + run, {method: "DELETE", mode: "no-cors"});
  await tryFetch("read_runs", base + "/api/runs");
  await tryFetch("read_run", base + "/api/runs/" + run);
  await tryFetch("read_datasets", base + "/api/datasets");
  await tryFetch("upload", base + "/api/datasets?name=evil", {method: "POST", mode: "no-cors", body: "date,value\n2020-01-01,1\n"});
  // A form posted into a frame: a navigation, no CORS at all.
  await new Promise((resolve) => {
    const f = document.createElement("iframe"); f.name = "sink"; document.body.appendChild(f);
    const form = document.createElement("form");
    form.method = "POST"; form.action = base + "/api/runs"; form.enctype = "text/plain"; form.target = "sink";
    const i = document.createElement("input"); i.name = '{"epochs":3,"x":"'; i.value = '"}'; form.appendChild(i);
    document.body.appendChild(form); f.onload = () => { note("start_form", "posted"); resolve(); }; form.submit();
    setTimeout(resolve, 3000);
  });
  // /ws/predict by an image: a plain GET, which used to queue a forecast.
  await new Promise((resolve) => { const img = new Image(); img.onload = img.onerror = resolve; img.src = base.replace("http", "http") + "/ws/predict?horizon=7"; setTimeout(resolve, 2000); });
  const tryWS = (k, path) => new Promise((resolve) => {
    const ws = new WebSocket(base.replace("http", "ws") + path);
    let got = 0;
    ws.onmessage = () => { got++; };
    ws.onclose = (e) => { note(k, got ? "read " + got + " messages" : "closed " + e.code); resolve(); };
    setTimeout(() => { note(k, got ? "read " + got + " messages" : "open, nothing"); ws.close(); resolve(); }, 3000);
  });
  await tryWS("ws_runs", "/ws");
  await tryWS("ws_run", "/ws?run=" + run);
  await tryWS("ws_predict", "/ws/predict?horizon=9");
  // A sandboxed frame: Origin "null".
  await new Promise((resolve) => {
    window.addEventListener("message", (e) => { note("null_origin", e.data); resolve(); });
    const f = document.createElement("iframe"); f.sandbox = "allow-scripts";
    f.srcdoc = "<script>fetch(" + JSON.stringify(base + "/api/runs") + ",{method:'POST',headers:{'Content-Type':'application/json'},body:'{}'}).then(r=>r.text()).then(t=>parent.postMessage('read '+t.slice(0,60),'*')).catch(e=>parent.postMessage('blocked '+e.name,'*'))<\/script>";
    document.body.appendChild(f); setTimeout(resolve, 3000);
  });
  return r;
})();
`

// hostileRun opens url in a tab, runs attackJS there against base, and
// returns its results.
func hostileRun(t *testing.T, browser context.Context, url, base, run string) map[string]string {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if err := firstRun(tab, connectWait); err != nil {
		t.Fatal(err)
	}
	ctx, cancelAct := context.WithTimeout(tab, 90*time.Second)
	defer cancelAct()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	js := strings.ReplaceAll(strings.ReplaceAll(attackJS, "BASE", strconv.Quote(base)), "RUN", strconv.Quote(run))
	return hostileEval(t, ctx, js)
}

// hostileEval runs the attack script and waits for its results.
func hostileEval(t *testing.T, ctx context.Context, js string) map[string]string {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		t.Fatalf("running the attack: %v", err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`window.done`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("the attack's results: %v", err)
	}
	return res
}

// hostileCheck fails on anything the page read or did.
func hostileCheck(t *testing.T, srv *server, run string, res map[string]string, before float64) {
	t.Helper()
	for k, v := range res {
		if strings.HasPrefix(v, "read ") && !strings.HasPrefix(v, "read 403") {
			t.Errorf("the page %s: %s", k, v)
		}
	}
	t.Logf("what the page got: %v", res)
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Get("http://" + srv.addr + "/api/runs")
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		body.WriteString(sc.Text())
	}
	resp.Body.Close()
	if n := strings.Count(body.String(), `"run_id": "run_`); n != 1 {
		t.Errorf("%d runs after the attack, want only the test's own: %s", n, body.String())
	}
	if state, _ := relState(t, srv.addr, run); state != "running" && state != "completed" {
		t.Errorf("the test's run is %s after the attack", state)
	}
	if regexp.MustCompile(`forecast_[0-9a-f]{12}`).MatchString(srv.logs.String()) {
		t.Error("the page started a forecast")
	}
	if _, err := os.Stat(filepath.Join(srv.datasets, "evil.csv")); err == nil {
		t.Error("the page uploaded a dataset")
	}
	if after := refusedCount(t, srv.addr); after-before < 5 {
		t.Errorf("the server counted %v refusals; the browser, not the server, stopped the page", after-before)
	}
}

// refusedCount sums kairoscope_http_refused_total.
func refusedCount(t *testing.T, addr string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "kairoscope_http_refused_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
}

// A page of another site (http://evil.test) can neither start, cancel nor
// read anything of a server with no token.
func TestE2EHostilePage(t *testing.T) {
	browser := hostileBrowser(t)
	srv := startServer(t)
	run := postRun(t, srv.addr, longRunRequest)
	evil := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>evil</title><body>nothing to see</body>")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go evil.Serve(ln)
	defer evil.Close()
	before := refusedCount(t, srv.addr)
	_, port, _ := net.SplitHostPort(srv.addr)
	for _, base := range []string{"http://localhost:" + port, "http://127.0.0.1:" + port} {
		res := hostileRun(t, browser, "http://evil.test:"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)+"/", base, run)
		hostileCheck(t, srv, run, res, before)
	}
}

// A DNS-rebound page: served by the attacker at http://rebind.test:P,
// then the name points at this machine, where the server listens on P:
// the page's requests are same-origin for the browser and carry the
// attacker's Host, which the server refuses.
func TestE2EReboundPage(t *testing.T) {
	browser := hostileBrowser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	evil := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>rebind</title><body>loading…</body>")
	})}
	go evil.Serve(ln)
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if err := firstRun(tab, connectWait); err != nil {
		t.Fatal(err)
	}
	ctx, cancelAct := context.WithTimeout(tab, 2*time.Minute)
	defer cancelAct()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://rebind.test:"+port+"/")); err != nil {
		t.Fatal(err)
	}
	// The rebinding: the attacker's server goes, kairoscope takes its port.
	evil.Close()
	srv := startServerWith(t, nil, "--addr", "127.0.0.1:"+port)
	run := postRun(t, srv.addr, longRunRequest)
	before := refusedCount(t, srv.addr)
	js := strings.ReplaceAll(strings.ReplaceAll(attackJS, "BASE", strconv.Quote("http://rebind.test:"+port)), "RUN", strconv.Quote(run))
	res := hostileEval(t, ctx, js)
	// Same-origin for the browser: the page reads the answers, which must
	// all be the server's 403 naming --allowed-hosts.
	if !strings.HasPrefix(res["read_runs"], "read 403") || !strings.Contains(res["read_runs"], "is not allowed") {
		t.Errorf("GET /api/runs from the rebound page: %q, want the server's 403", res["read_runs"])
	}
	hostileCheck(t, srv, run, res, before)
}
