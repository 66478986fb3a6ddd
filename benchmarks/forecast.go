package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// The forecast benchmark: `kairoscope predict --data FILE --horizon 30`
// against series length, each series run side by side (current, reference,
// current, ...) against the same command built from a reference revision of
// the repository (-forecast-ref, by default the engine before issue 12),
// and against R forecast's auto.arima where Rscript and r-cran-forecast are
// installed; then the time a /ws/predict client waits for its output on the
// longest series, with its steps checked against the seed's contract.

// ForecastSeries are the series timed, shortest first, as paths from the
// repository's root: every one is a file both binaries can read.
var ForecastSeries = []struct{ Name, Path, Dataset string }{
	{"bike (731 days)", "datasets/bike.csv", "bike"},
	{"visits (2,000 days)", "benchmarks/data/visits_2000.csv", ""},
	{"transit (5,700 days)", "datasets/transit.csv", "transit"},
}

// DefaultForecastRef is the revision the forecast is compared with: the
// last commit of main before issue 12 changed the forecast's training.
const DefaultForecastRef = "0b35a55"

// ForecastResult is the forecast benchmark's part of the results.
type ForecastResult struct {
	Ref    string                 `json:"ref"` // the reference revision
	Runs   int                    `json:"runs"`
	Series []ForecastSeriesResult `json:"series"`
	// RUnavailable says why auto.arima was not timed ("" when it was).
	RUnavailable string `json:"r_unavailable,omitempty"`
	// Predict is /ws/predict on the longest series.
	Predict *PredictPipeline `json:"ws_predict,omitempty"`
}

// ForecastSeriesResult is one series: medians of the runs of each side.
type ForecastSeriesResult struct {
	Name       string    `json:"name"`
	Rows       int       `json:"rows"`
	Seconds    float64   `json:"seconds"`     // current predict, median wall time
	PeakRSS    int64     `json:"peak_rss"`    // its largest run's peak RSS, bytes
	RefSeconds float64   `json:"ref_seconds"` // the reference's
	RefPeakRSS int64     `json:"ref_peak_rss"`
	Speedup    float64   `json:"speedup"`             // RefSeconds / Seconds
	RSeconds   float64   `json:"r_seconds,omitempty"` // auto.arima fit and forecast, median
	AllSeconds []float64 `json:"all_seconds"`
	AllRef     []float64 `json:"all_ref_seconds"`
}

// PredictPipeline is one /ws/predict client on a served dataset.
type PredictPipeline struct {
	Dataset      string  `json:"dataset"`
	SecondsToOut float64 `json:"seconds_to_output"` // from the upgrade to the output message
	Steps        int     `json:"steps"`             // steps messages
	FirstTotal   int     `json:"first_total_step"`
	LastTotal    int     `json:"last_total_step"`
	StepsFollow  bool    `json:"steps_follow_seed"` // step += 1, total_step never grows, ends equal
	OutputDays   int     `json:"output_days"`
}

func (b *bench) forecast(ctx context.Context, root string) (*ForecastResult, error) {
	fr := &ForecastResult{Ref: b.o.forecastRef, Runs: b.o.forecastRuns}
	cur := filepath.Join(b.tmp, "kairoscope")
	ref := filepath.Join(b.tmp, "kairoscope-ref")
	fmt.Fprintf(b.stderr, "forecast: building kairoscope here and at %s\n", b.o.forecastRef)
	if err := b.buildKairoscope(ctx, root, cur); err != nil {
		return nil, err
	}
	src := filepath.Join(b.tmp, "ref-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if _, _, err := b.command(ctx, nil, root, "sh", "-c",
		fmt.Sprintf("git archive %s | tar -x -C %s", shellQuote(b.o.forecastRef), shellQuote(src))); err != nil {
		return nil, fmt.Errorf("benchmarks: extracting %s: %w", b.o.forecastRef, err)
	}
	if err := b.buildKairoscope(ctx, src, ref); err != nil {
		return nil, err
	}
	rscript, why := rAvailable(ctx)
	fr.RUnavailable = why
	for _, s := range ForecastSeries {
		path := filepath.Join(root, s.Path)
		rows, err := countRows(path)
		if err != nil {
			return nil, err
		}
		sr := ForecastSeriesResult{Name: s.Name, Rows: rows}
		var rs []float64
		for i := 0; i < b.o.forecastRuns; i++ {
			for _, side := range []struct {
				bin  string
				secs *[]float64
				rss  *int64
			}{{cur, &sr.AllSeconds, &sr.PeakRSS}, {ref, &sr.AllRef, &sr.RefPeakRSS}} {
				t0 := time.Now()
				_, ps, err := b.command(ctx, nil, b.tmp, side.bin, "predict", "--data", path, "--horizon", "30")
				if err != nil {
					return nil, err
				}
				*side.secs = append(*side.secs, time.Since(t0).Seconds())
				*side.rss = max(*side.rss, peakRSS(ps))
			}
			line := fmt.Sprintf("forecast %-22s run %d/%d  predict %.2f s  reference %.2f s", s.Name, i+1, b.o.forecastRuns,
				sr.AllSeconds[i], sr.AllRef[i])
			if rscript != "" {
				out, _, err := b.command(ctx, nil, b.tmp, rscript, filepath.Join(b.dir, "peers", "auto_arima.R"), path)
				if err != nil {
					return nil, err
				}
				v, err := strconv.ParseFloat(strings.TrimSpace(lastLine(string(out))), 64)
				if err != nil {
					return nil, fmt.Errorf("benchmarks: auto_arima.R printed %q, want seconds", out)
				}
				rs = append(rs, v)
				line += fmt.Sprintf("  auto.arima %.2f s", v)
			}
			fmt.Fprintln(b.stderr, line)
		}
		sr.Seconds, sr.RefSeconds, sr.RSeconds = median(sr.AllSeconds), median(sr.AllRef), median(rs)
		sr.Speedup = sr.RefSeconds / sr.Seconds
		fr.Series = append(fr.Series, sr)
	}
	last := ForecastSeries[len(ForecastSeries)-1]
	p, err := b.predictPipeline(ctx, cur, last.Dataset)
	if err != nil {
		return nil, err
	}
	fr.Predict = p
	return fr, nil
}

func (b *bench) buildKairoscope(ctx context.Context, dir, out string) error {
	args := []string{"build", "-o", out}
	if b.cpuTags != "" {
		args = append(args, "-tags", b.cpuTags)
	}
	if _, _, err := b.command(ctx, nil, dir, b.o.goCmd, append(args, "./cmd/kairoscope")...); err != nil {
		return fmt.Errorf("benchmarks: building kairoscope in %s: %w", dir, err)
	}
	return nil
}

// rAvailable returns Rscript's path when it runs and loads the forecast
// package, else "" and why.
func rAvailable(ctx context.Context) (string, string) {
	r, err := exec.LookPath("Rscript")
	if err != nil {
		return "", "R unavailable: no Rscript (apt-get install r-cran-forecast)"
	}
	if out, err := exec.CommandContext(ctx, r, "-e", "suppressMessages(library(forecast))").CombinedOutput(); err != nil {
		return "", "R unavailable: Rscript cannot load forecast (apt-get install r-cran-forecast): " + firstLine(string(out))
	}
	return r, ""
}

// predictPipeline serves the current binary on a free loopback port and
// times one /ws/predict client on dataset from the upgrade to its output,
// checking its steps as the seed describes them.
func (b *bench) predictPipeline(ctx context.Context, bin, dataset string) (*PredictPipeline, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--addr", addr)
	srv.Dir = b.tmp
	logs, err := srv.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "kairoscope listening") {
				close(ready)
				once = true
			}
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("benchmarks: serve did not start: %w", ctx.Err())
	}
	u := url.URL{Scheme: "ws", Host: addr, Path: "/ws/predict", RawQuery: "dataset=" + url.QueryEscape(dataset) + "&horizon=30"}
	t0 := time.Now()
	c, _, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("benchmarks: /ws/predict: %w", err)
	}
	defer c.Close()
	p := &PredictPipeline{Dataset: dataset, StepsFollow: true}
	lastStep, lastTotal := 0, 0
	for {
		c.SetReadDeadline(time.Now().Add(b.o.timeout))
		var m struct {
			Status    string            `json:"status"`
			Message   string            `json:"message"`
			Step      int               `json:"step"`
			TotalStep int               `json:"total_step"`
			Payload   []json.RawMessage `json:"payload"`
		}
		if err := c.ReadJSON(&m); err != nil {
			return nil, fmt.Errorf("benchmarks: /ws/predict on %s: %w", dataset, err)
		}
		switch m.Status {
		case "steps":
			p.Steps++
			if p.Steps == 1 {
				p.FirstTotal = m.TotalStep
			} else if m.Step != lastStep+1 || m.TotalStep > lastTotal {
				p.StepsFollow = false
			}
			lastStep, lastTotal = m.Step, m.TotalStep
		case "output":
			p.SecondsToOut = time.Since(t0).Seconds()
			p.LastTotal, p.OutputDays = lastTotal, len(m.Payload)
			p.StepsFollow = p.StepsFollow && p.Steps > 0 && lastStep == lastTotal
			fmt.Fprintf(b.stderr, "forecast /ws/predict?dataset=%s: output after %.2f s, %d steps (total_step %d → %d)\n",
				dataset, p.SecondsToOut, p.Steps, p.FirstTotal, p.LastTotal)
			return p, nil
		case "error":
			return nil, fmt.Errorf("benchmarks: /ws/predict on %s: %s", dataset, m.Message)
		}
	}
}

func countRows(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("benchmarks: %w", err)
	}
	return strings.Count(strings.TrimSpace(string(b)), "\n"), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
