//go:build linux

package main

// End-to-end tests: the built kairoscope binary serves on loopback as a child
// process, and the seed documents' own example clients talk to it — the
// Python websockets client under Debian's python3, the JavaScript clients in
// headless Debian Chromium — unchanged but for host and port. A missing
// python3-websockets or chromium fails the tests with "run make test-deps":
// CI installs them through that target, so a skip would hide a broken
// install step.
//
// Every wait is bounded, so a hang fails the test instead of blocking CI.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

const (
	// seedAddr is the server address written in the seed clients; the tests
	// replace it, and nothing else, with the real one when they load a client.
	seedAddr = "ws://localhost:8000"

	// systemPython is Debian's python3, which has python3-websockets; the
	// python3 first on PATH may be another interpreter without it.
	systemPython = "/usr/bin/python3"
	chromiumPath = "/usr/bin/chromium"

	installHint = "run `make test-deps` (as root) to install Debian's chromium and python3-websockets"

	// Bounds on every wait.
	serverStartWait = 30 * time.Second // until "kairoscope listening"
	serverStopWait  = 15 * time.Second // from SIGTERM to exit
	connectWait     = 20 * time.Second // until a client says it is connected
	smallRunWait    = 2 * time.Minute  // a 1-fold, 2-epoch run, start to end
	forecastWait    = 3 * time.Minute  // the /ws/predict forecast, the slow part
	browserWait     = 60 * time.Second // Chromium's start
	closeFrameWait  = serverStopWait   // from SIGTERM to the client's close frame
	firstEpochWait  = 2 * time.Minute  // from POST to the epoch that triggers SIGTERM
	httpTimeout     = 10 * time.Second // one REST call
	clientExitWait  = 10 * time.Second // a killed client process to be reaped
	orphanWait      = 3 * time.Second  // a dead server's workers to be reaped
	buildTimeout    = 5 * time.Minute  // go build of the binary
	serverLogTail   = 80               // server log lines shown when a test fails
	smallRunRequest = `{"dataset":"bike","folds":1,"epochs":2}`
	longRunRequest  = `{"dataset":"bike","folds":2,"epochs":50}`
)

// seedsDir holds the seed documents the clients come from, copied unchanged
// from shared/seeds so that a clone alone has them.
const seedsDir = "testdata/seeds"

// predictionsHeader is the README's predictions CSV columns.
var predictionsHeader = []string{"timestamp", "horizon", "y_true", "mu", "sigma", "p_up_raw", "p_up_cal",
	"conf_low", "conf_high", "conformal_p", "pit_z", "split"}

// e2eDir holds the binary built for the e2e tests; TestMain removes it.
var e2eDir string

// buildOnce returns a function that runs `go build -o e2eDir/name args…`
// once per test binary, on the first test that needs it, and returns the
// binary; hint is added to a build error.
func buildOnce(name, hint string, args ...string) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		bin := filepath.Join(e2eDir, name)
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s%s: %w\n%s", strings.Join(args, " "), hint, err, out)
		}
		return bin, nil
	})
}

// buildKairoscope builds the binary the e2e tests run.
var buildKairoscope = buildOnce("kairoscope", "", ".")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kairoscope-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	e2eDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestE2EPythonTrainingClient runs the schema document's Python websockets
// example against the server and checks the training messages it prints.
func TestE2EPythonTrainingClient(t *testing.T) {
	requirePython(t)
	srv := startServer(t)
	script := filepath.Join(t.TempDir(), "training_client.py")
	if err := os.WriteFile(script, []byte(seedClient(t, "training_client.py", srv.addr)), 0o644); err != nil {
		t.Fatal(err)
	}

	// -u: the client prints to a pipe, which Python would otherwise buffer.
	cmd := exec.Command(systemPython, "-u", script)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // closes stdout, ending the reader
	quit := make(chan struct{})
	t.Cleanup(func() {
		close(quit)
		stopClient(t, cmd, exited)
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout) // lines are long: prediction_delta is ~40 KB
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				select {
				case lines <- strings.TrimRight(line, "\n"):
				case <-quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	next := func(deadline <-chan time.Time, what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the Python client exited while waiting for %s\nstderr:\n%s", what, stderr.String())
			}
			return line
		case <-deadline:
			t.Fatalf("no %s from the Python client in time\nstderr:\n%s", what, stderr.String())
		}
		return ""
	}

	if line := next(time.After(connectWait), `"Connected"`); line != "Connected" {
		t.Fatalf("first line %q, want \"Connected\"", line)
	}
	runID := postRun(t, srv.addr, smallRunRequest)

	// Received <type>: <the message as a Python dict>
	received := regexp.MustCompile(`^Received (\w+): (\{.*\})$`)
	runIDField := regexp.MustCompile(`'run_id': '([^']*)'`)
	seqField := regexp.MustCompile(`'seq': (\d+), 'attempt': 1\}$`)
	var types []string
	lastSeq := 0
	deadline := time.After(smallRunWait)
	for done := false; !done; {
		line := next(deadline, "training_complete")
		m := received.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected client output %.200q", line)
		}
		typ, dict := m[1], m[2]
		types = append(types, typ)
		if id := runIDField.FindStringSubmatch(dict); id == nil || id[1] != runID {
			t.Errorf("%s: run_id %v, want %q", typ, id, runID)
		}
		// A plain client gets no prediction_delta: their seqs are the gaps.
		seq := seqField.FindStringSubmatch(dict)
		n := -1
		if seq != nil {
			n, _ = strconv.Atoi(seq[1])
		}
		if n <= lastSeq || (lastSeq == 0 && n != 1) {
			t.Errorf("%s: seq %v after %d, want the run's first message at 1, then increasing", typ, seq, lastSeq)
		} else {
			lastSeq = n
		}
		switch typ {
		case "training_error":
			t.Fatalf("training_error: %.300s", dict)
		case "training_complete":
			done = true
		}
	}
	stopClient(t, cmd, exited) // it loops forever

	want := []string{"dataset_ready", "training_start", "epoch_metrics", "epoch_metrics", "fold_complete", "training_complete"}
	if slices.Contains(types, "prediction_delta") {
		t.Errorf("a plain client got prediction_delta: %v", types)
	}
	if got := withoutExtras(types); !slices.Equal(got, want) {
		t.Errorf("message types (without notification, prediction_delta):\n%v\nwant\n%v\nall: %v", got, want, types)
	}
}

// withoutExtras drops the extension messages the schema allows between the
// core ones.
func withoutExtras(types []string) []string {
	return slices.DeleteFunc(slices.Clone(types), func(s string) bool {
		return s == "notification" || s == "prediction_delta"
	})
}

// TestE2EBrowserClients runs the seed documents' JavaScript clients in
// headless Chromium, on a page of the server's own origin: the training
// client through a small run, then the predict client through one forecast.
func TestE2EBrowserClients(t *testing.T) {
	requireChromium(t)
	srv := startServer(t)
	browser := startBrowser(t)

	t.Run("training", func(t *testing.T) {
		con := openClient(t, browser, srv.addr, "training_client.js")
		con.waitFor(t, connectWait, "WebSocket connected")
		postRun(t, srv.addr, smallRunRequest)
		con.waitFor(t, smallRunWait, "Training complete")

		epoch := regexp.MustCompile(`^Epoch (\d+): AUC=(-?\d[\d.e+-]*|null), DirAcc=(-?\d[\d.e+-]*)$`)
		var got []string
		var epochs []string
		for _, m := range con.calls() {
			got = append(got, m.Text)
			if strings.HasPrefix(m.Text, "Epoch ") {
				e := epoch.FindStringSubmatch(m.Text)
				if e == nil {
					t.Errorf("epoch line %q does not read \"Epoch N: AUC=<number>, DirAcc=<number>\"", m.Text)
					continue
				}
				epochs = append(epochs, e[1])
			}
		}
		want := []string{"WebSocket connected", "Training started: 1 folds, 2 epochs"}
		if len(got) < 2 || !slices.Equal(got[:2], want) {
			t.Errorf("console starts %q, want %q", got, want)
		}
		if !slices.Equal(epochs, []string{"0", "1"}) {
			t.Errorf("epoch lines for epochs %v, want [0 1]; console: %q", epochs, got)
		}
		if got[len(got)-1] != "Training complete" {
			t.Errorf("console ends %q, want \"Training complete\" last", got)
		}
		con.noErrors(t)
	})

	t.Run("predict", func(t *testing.T) {
		con := openClient(t, browser, srv.addr, "predict_client.js")
		con.waitFor(t, forecastWait, "Connexion fermée proprement")

		var got []string
		progress, result := 0, -1
		for i, m := range con.calls() {
			got = append(got, m.Text)
			switch {
			case strings.HasPrefix(m.Text, "Progression: "):
				progress++
				if !regexp.MustCompile(`^Progression: \d+/\d+ - \S`).MatchString(m.Text) {
					t.Errorf("progress line %q does not read \"Progression: step/total - name\"", m.Text)
				}
			case strings.HasPrefix(m.Text, "Résultat Reçu:"):
				result = i
				if len(m.Args) != 2 || m.Args[1].Subtype != "array" || m.Args[1].Description != "Array(30)" {
					var desc string
					if len(m.Args) == 2 {
						desc = string(m.Args[1].Subtype) + " " + m.Args[1].Description
					}
					t.Errorf("result payload is %q, want an array of 30 forecasts (Array(30))", desc)
				}
			}
		}
		if len(got) == 0 || got[0] != "Connexion établie" {
			t.Errorf("console starts %q, want \"Connexion établie\" first", got)
		}
		if !slices.Contains(got, "Info: Chargement des données...") {
			t.Errorf("no \"Info: Chargement des données...\" in %q", got)
		}
		if progress == 0 {
			t.Errorf("no \"Progression: \" line in %q", got)
		}
		if result < 0 || result != len(got)-2 || got[len(got)-1] != "Connexion fermée proprement" {
			t.Errorf("console ends %q, want \"Résultat Reçu: …\" then \"Connexion fermée proprement\"", got[max(0, len(got)-3):])
		}
		con.noErrors(t)
	})
}

// TestE2EShutdown sends SIGTERM to a server in the middle of a run: the /ws
// client must get a close frame 1001, the server must exit 0 within
// serverStopWait, and the reports must hold no temporary file, no summary
// (the run did not finish) and only whole predictions CSVs, one per fold
// completed before the signal.
func TestE2EShutdown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stopFold int // SIGTERM on the first epoch_metrics of this fold
		wantCSVs int
	}{
		{"first epoch", 0, 0},
		{"second fold", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t)
			dialCtx, cancel := context.WithTimeout(context.Background(), connectWait)
			conn, _, err := websocket.DefaultDialer.DialContext(dialCtx, "ws://"+srv.addr+"/ws", nil)
			cancel()
			if err != nil {
				t.Fatalf("dialing /ws: %v", err)
			}
			defer conn.Close()
			runID := postRun(t, srv.addr, longRunRequest)

			conn.SetReadDeadline(time.Now().Add(firstEpochWait))
			var completed []string // predictions_path of each fold_complete
			for {
				var m struct {
					Type            string `json:"type"`
					RunID           string `json:"run_id"`
					FoldID          int    `json:"fold_id"`
					PredictionsPath string `json:"predictions_path"`
					Error           string `json:"error"`
				}
				if err := conn.ReadJSON(&m); err != nil {
					t.Fatalf("reading /ws before fold %v's first epoch: %v", tc.stopFold, err)
				}
				if m.RunID != runID {
					t.Fatalf("message for run %q, want %q", m.RunID, runID)
				}
				switch m.Type {
				case "training_error", "training_complete":
					t.Fatalf("run ended before fold %v's first epoch: %s %s", tc.stopFold, m.Type, m.Error)
				case "fold_complete":
					completed = append(completed, m.PredictionsPath)
				}
				if m.Type == "epoch_metrics" && m.FoldID == tc.stopFold {
					break
				}
			}

			srv.signal(t, syscall.SIGTERM)
			signalled := time.Now()
			conn.SetReadDeadline(signalled.Add(closeFrameWait))
			var after []string
			for {
				_, msg, err := conn.ReadMessage()
				if err == nil {
					var m struct{ Type, PredictionsPath string }
					json.Unmarshal(msg, &m)
					after = append(after, m.Type)
					if m.Type == "fold_complete" {
						// A fold may end while the worker stops.
						completed = append(completed, m.PredictionsPath)
					}
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("after SIGTERM the client got %v, want a close frame 1001 (messages after SIGTERM: %v)", err, after)
				}
				if ce.Code != websocket.CloseGoingAway {
					t.Errorf("close frame %d %q, want 1001 (going away)", ce.Code, ce.Text)
				}
				t.Logf("close frame %d %q %v after SIGTERM; messages after SIGTERM: %v", ce.Code, ce.Text, time.Since(signalled).Round(time.Millisecond), after)
				break
			}
			if err := srv.wait(serverStopWait - time.Since(signalled)); err != nil {
				t.Fatalf("after SIGTERM: %v", err)
			}
			t.Logf("server exited 0 %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))

			csvs := checkReports(t, filepath.Join(srv.reports, runID))
			if len(csvs) != len(completed) || len(completed) < tc.wantCSVs {
				t.Errorf("%d predictions CSVs %v and %d fold_complete %v, want one CSV per fold_complete, at least %d", len(csvs), csvs, len(completed), completed, tc.wantCSVs)
			}
			for _, p := range completed {
				if !slices.Contains(csvs, p) {
					t.Errorf("fold_complete's %s is not among the reports' CSVs %v", p, csvs)
				}
			}
		})
	}
}

// checkReports fails on a temporary file (a name starting with '.') or a
// summary.json under dir, and on a predictions CSV that is not whole. It
// returns the CSVs' paths.
func checkReports(t *testing.T, dir string) []string {
	t.Helper()
	var csvs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, "."):
			t.Errorf("temporary file left in the reports: %s", path)
		case name == "summary.json":
			t.Errorf("a cancelled run has %s", path)
		case !d.IsDir() && strings.HasSuffix(name, ".csv"):
			csvs = append(csvs, path)
			if err := checkPredictionsCSV(path); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return csvs
}

// checkPredictionsCSV checks that path is a whole predictions CSV: the
// header, at least one row, every row complete with numbers where numbers
// belong, and a final newline.
func checkPredictionsCSV(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return errors.New("does not end with a newline: cut short")
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return err
	}
	if len(rows) < 2 {
		return fmt.Errorf("%d lines, want a header and rows", len(rows))
	}
	if !slices.Equal(rows[0], predictionsHeader) {
		return fmt.Errorf("header %v, want %v", rows[0], predictionsHeader)
	}
	for i, row := range rows[1:] {
		if _, err := time.Parse(time.RFC3339, row[0]); err != nil {
			return fmt.Errorf("row %d: timestamp: %v", i+1, err)
		}
		for j := 1; j < len(row)-1; j++ {
			if _, err := strconv.ParseFloat(row[j], 64); err != nil {
				return fmt.Errorf("row %d: %s: %v", i+1, predictionsHeader[j], err)
			}
		}
		if s := row[len(row)-1]; s == "" {
			return fmt.Errorf("row %d: empty split", i+1)
		}
	}
	return nil
}

// TestE2ESeedClientsAreVerbatim checks that testdata/seed_clients holds the
// seed documents' code blocks byte for byte, the documents being the copies
// in testdata/seeds.
func TestE2ESeedClientsAreVerbatim(t *testing.T) {
	for _, c := range []struct{ file, doc, lang string }{
		{"training_client.py", "training-websocket-schema.md", "python"},
		{"training_client.js", "training-websocket-schema.md", "javascript"},
		{"predict_client.js", "kairoscope-predict-websocket.md", "javascript"},
	} {
		doc, err := os.ReadFile(filepath.Join(seedsDir, c.doc))
		if err != nil {
			t.Fatal(err)
		}
		_, block, ok := bytes.Cut(doc, []byte("```"+c.lang+"\n"))
		block, _, ok2 := bytes.Cut(block, []byte("```"))
		if !ok || !ok2 {
			t.Fatalf("%s has no %s code block", c.doc, c.lang)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "seed_clients", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, block) {
			t.Errorf("testdata/seed_clients/%s differs from the first %s block of %s: copy it again, unchanged", c.file, c.lang, c.doc)
		}
	}
}

// requirePython fails unless Debian's python3 can import websockets.
func requirePython(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(systemPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import websockets: %v %s\n%s", systemPython, err, bytes.TrimSpace(out), installHint)
	}
}

// requireChromium fails unless Debian's chromium is installed.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s: %v\n%s", chromiumPath, err, installHint)
	}
}

// seedClient returns the seed client in testdata/seed_clients with its
// server address replaced by addr (host:port).
func seedClient(t *testing.T, name, addr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed_clients", name))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(seedAddr)); n != 1 {
		t.Fatalf("%s names %s %d times, want once", name, seedAddr, n)
	}
	return strings.Replace(string(b), seedAddr, "ws://"+addr, 1)
}

// stopClient kills a client process and reaps it.
func stopClient(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}) {
	t.Helper()
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(clientExitWait):
		t.Errorf("client %s did not exit after SIGKILL", cmd.Path)
	}
}

// postRun starts a training run and returns its ID.
func postRun(t *testing.T, addr, body string) string {
	t.Helper()
	id, _ := postRunTo(t, addr, body)
	return id
}

// child is one kairoscope child process: its log and its exit.
type child struct {
	what    string // "kairoscope serve", "kairoscope agent": for messages
	cmd     *exec.Cmd
	logs    *syncBuffer   // its stderr: zerolog JSON lines
	exited  chan struct{} // closed once it has exited
	waitErr error         // valid once exited is closed
	killed  bool          // the test killed it on purpose: its exit status is no failure
}

// server is one `kairoscope serve` child process.
type server struct {
	*child
	addr     string // host:port it listens on
	reports  string
	data     string // --data-dir: the embedded NATS store, the agent's name
	datasets string // its --datasets folder
}

// startServer starts `kairoscope serve --addr 127.0.0.1:0` with a fresh
// reports folder and waits for its address. At the end of the test it sends
// SIGTERM, unless the server has already exited, and fails if the server does
// not exit 0 within serverStopWait. On failure the test shows its log's end.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with added environment variables and
// serve flags.
func startServerWith(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{reports: t.TempDir()}
	if i := slices.Index(args, "--datasets"); i >= 0 && i+1 < len(args) {
		s.datasets = args[i+1]
	} else {
		s.datasets = filepath.Join(t.TempDir(), "datasets") // never a folder in the repository
		args = append(args, "--datasets", s.datasets)
	}
	if i := slices.Index(args, "--data-dir"); i >= 0 && i+1 < len(args) {
		s.data = args[i+1]
	} else {
		s.data = t.TempDir()
		args = append(args, "--data-dir", s.data)
	}
	addr := make(chan string, 1)
	s.child = startChild(t, "kairoscope serve", env, append([]string{"serve", "--addr", "127.0.0.1:0", "--reports", s.reports}, args...),
		func(line []byte) bool {
			var l struct{ Message, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Message == "kairoscope listening" && l.Addr != "" {
				addr <- l.Addr
				return true
			}
			return false
		})
	s.addr = <-addr
	return s
}

// startChild starts the built kairoscope with args and added environment
// variables, and waits until ready says yes to a line of its log. At the
// end of the test it sends SIGTERM, unless the process has already exited,
// and fails if it does not exit 0 within serverStopWait. On failure the
// test shows its log's end.
func startChild(t *testing.T, what string, env, args []string, ready func(line []byte) bool) *child {
	t.Helper()
	bin, err := buildKairoscope()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{what: what, logs: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	// The seed clients cannot send a token, and a GPU worker named in the
	// environment would change which worker runs.
	c.cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "KAIROSCOPE_TOKEN=") || strings.HasPrefix(kv, "KAIROSCOPE_CUDA_WORKER=") ||
			strings.HasPrefix(kv, "KAIROSCOPE_NATS=") || strings.HasPrefix(kv, commitPauseEnv+"=")
	})
	c.cmd.Env = append(c.cmd.Env, env...)
	// Signals go to the process alone (its workers hear from it), and it
	// dies with the test binary if that is killed (go test -timeout).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	isReady := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.logs.Write(append(sc.Bytes(), '\n'))
			if ready != nil && ready(sc.Bytes()) {
				ready = nil
				close(isReady)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Signal(syscall.SIGCONT) // a test that failed while it was stopped
			c.signal(t, syscall.SIGTERM)
		}
		if err := c.wait(serverStopWait); err != nil {
			t.Errorf("stopping %s: %v", c.what, err)
		}
		if t.Failed() {
			t.Logf("%s log (last %d lines):\n%s", c.what, serverLogTail, c.logs.tail(serverLogTail))
		}
	})
	select {
	case <-isReady:
	case <-c.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", what, c.waitErr, c.logs.tail(serverLogTail))
	case <-time.After(serverStartWait):
		t.Fatalf("%s was not ready within %v\n%s", what, serverStartWait, c.logs.tail(serverLogTail))
	}
	return c
}

func (c *child) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", c.what, err)
	}
}

// wait returns nil once the process has exited 0 within d, leaving no
// process of its group behind. If it has not exited by then, it kills the
// process group and says so.
func (c *child) wait(d time.Duration) error {
	select {
	case <-c.exited:
	case <-time.After(d):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed it", c.what, d)
	}
	var errs []error
	if c.waitErr != nil && !c.killed {
		errs = append(errs, fmt.Errorf("%s exited with %v, want 0", c.what, c.waitErr))
	}
	if c.groupAlive(orphanWait) {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		errs = append(errs, fmt.Errorf("a process of its group outlived %s; killed it", c.what))
	}
	return errors.Join(errs...)
}

// groupAlive reports whether a process of the child's group is still there
// after d. The orphans of a dead process need a moment to be reaped.
func (c *child) groupAlive(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if err := syscall.Kill(-c.cmd.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBrowser starts headless Debian Chromium as this machine needs it and
// returns a context whose children open tabs in it. The browser is stopped
// when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	var output syncBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		// Without these Chromium keeps trying Google's hosts on a closed
		// network.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), // before the allocator's cleanup: removed after Chromium exits
		chromedp.CombinedOutput(&output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // stops Chromium and waits for it
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := firstRun(ctx, browserWait); err != nil {
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, output.String())
	}
	return ctx
}

// firstRun makes the first chromedp call on ctx, which starts the browser or
// opens the tab. That call must get ctx itself, without a deadline (one would
// end the browser or tab with it), so d bounds it from outside.
func firstRun(ctx context.Context, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("not done within %v", d)
	}
}

// openClient opens a tab on the server's own origin, runs the seed client
// name in it with the server's address, and returns the tab's console. The
// tab shows the JSON of /api/datasets: GET / would send a browser to the
// dashboard, whose own WebSockets and scripts would share the tab.
func openClient(t *testing.T, browser context.Context, addr, name string) *console {
	t.Helper()
	script := seedClient(t, name, addr)
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := firstRun(tab, connectWait); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	con := &console{changed: make(chan struct{}, 1)}
	msgs := chromedp.Console(tab) // subscribed from here on
	go func() {
		for m, err := range msgs {
			if err != nil {
				return // the tab closed
			}
			con.add(m)
		}
	}()
	ctx, cancelAct := context.WithTimeout(tab, connectWait)
	defer cancelAct()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/api/datasets")); err != nil {
		t.Fatalf("opening http://%s/api/datasets: %v", addr, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return con
}

// console collects a tab's console messages as they arrive.
type console struct {
	mu      sync.Mutex
	msgs    []chromedp.ConsoleMessage
	changed chan struct{} // a token after each new message
}

func (c *console) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *console) messages() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// calls returns the page's own console API calls (console.log and the
// like): the messages without the browser's log entries and exceptions.
func (c *console) calls() []chromedp.ConsoleMessage {
	return slices.DeleteFunc(c.messages(), func(m chromedp.ConsoleMessage) bool {
		return m.Source != "" || m.IsException()
	})
}

// waitFor waits up to d for a console message whose text is text. It fails at
// once on a console error or an uncaught exception: the page would not
// recover from it.
func (c *console) waitFor(t *testing.T, d time.Duration, text string) {
	t.Helper()
	deadline := time.After(d)
	for {
		msgs := c.messages()
		for _, m := range msgs {
			if isError(m) {
				t.Fatalf("console error while waiting for %q: %s\nconsole:\n%s", text, m, dump(msgs))
			}
		}
		if slices.ContainsFunc(msgs, func(m chromedp.ConsoleMessage) bool { return m.Text == text }) {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("no %q on the console within %v\nconsole:\n%s", text, d, dump(msgs))
		}
	}
}

// noErrors fails on any console error or uncaught exception.
func (c *console) noErrors(t *testing.T) {
	t.Helper()
	for _, m := range c.messages() {
		if isError(m) {
			t.Errorf("console %s (%s:%d)", m, m.URL, m.Line+1)
		}
	}
}

// isError reports a console error or an uncaught exception, except the
// browser's own request for /favicon.ico, which the server answers 404: the
// page never asked for it.
func isError(m chromedp.ConsoleMessage) bool {
	if m.Source == "network" && strings.HasSuffix(m.URL, "/favicon.ico") {
		return false
	}
	return m.Type == chromedp.ConsoleError || m.IsException()
}

func dump(msgs []chromedp.ConsoleMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %.300s", m.String())
		if m.URL != "" {
			fmt.Fprintf(&b, " (%s)", m.URL)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n lines, each cut to 400 bytes.
func (s *syncBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
