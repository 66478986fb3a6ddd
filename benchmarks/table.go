package benchmarks

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

// printTable writes the run's results as a table with a header saying what
// ran where, then the GPU section and the hub's.
func printTable(w io.Writer, res *Results) {
	m := res.Machine
	fmt.Fprintf(w, "Kairoscope against PyTorch: %s run of %s (%.0f s)\n", res.Mode, res.Started.Format("2006-01-02 15:04 UTC"), res.Seconds)
	fmt.Fprintf(w, "machine: %s, %d cores, %s, %s\n", m.CPU, m.Cores, m.OS, m.Go)
	fmt.Fprintf(w, "CPU engine: %s, BLAS %s\n", m.Engine.Exec, m.Engine.BLAS)
	if m.PureGo != nil {
		fmt.Fprintf(w, "pure-Go build (what make build ships without libopenblas-dev; the pure-go row): %s, BLAS %s\n", m.PureGo.Exec, m.PureGo.BLAS)
	}
	if m.Torch != "" {
		fmt.Fprintf(w, "PyTorch: %s, %d thread (%s)\n", m.Torch, res.Method.TorchThreads, m.Python)
	} else {
		fmt.Fprintf(w, "PyTorch unavailable: %s\n", m.TorchUnavailable)
	}
	fmt.Fprintf(w, "model: MLP %d→h→h→3 ReLU, float32, Adam lr %g, loss NLL + %g·BCE; medians of %d interleaved runs of %d warm-up + N timed epochs\n\n",
		Features, LR, BCEWeight, res.Method.Runs, res.Method.WarmupEpochs)

	if len(res.Configs) > 0 { // none with -only hub
		printConfigs(w, res)
	}

	fmt.Fprintln(w)
	printGPU(w, res.GPU)
	if res.Forecast != nil {
		fmt.Fprintln(w)
		printForecast(w, res.Forecast)
	}
	if res.Hub != nil {
		fmt.Fprintln(w)
		printHub(w, res.Hub)
	}
}

// printForecast prints predict's wall time and peak memory per series
// against the reference and auto.arima, then /ws/predict's time to output.
func printForecast(w io.Writer, f *ForecastResult) {
	fmt.Fprintf(w, "Forecast: kairoscope predict --data FILE --horizon 30, medians of %d runs a side interleaved with the same command at %s\n", f.Runs, f.Ref)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\trows\tpredict s\tpeak RSS\treference s\treference RSS\tspeed-up\tauto.arima s\t")
	for _, s := range f.Series {
		r := "—"
		if s.RSeconds > 0 {
			r = fmt.Sprintf("%.2f", s.RSeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%.2f\t%s\t%.1f×\t%s\t\n", s.Name, s.Rows, s.Seconds, bytesString(s.PeakRSS),
			s.RefSeconds, bytesString(s.RefPeakRSS), s.Speedup, r)
	}
	tw.Flush()
	if f.RUnavailable != "" {
		fmt.Fprintln(w, f.RUnavailable)
	}
	if p := f.Predict; p != nil {
		fmt.Fprintf(w, "/ws/predict?dataset=%s: output after %.2f s; %d steps, total_step %d → %d, steps follow the seed: %v; %d days\n",
			p.Dataset, p.SecondsToOut, p.Steps, p.FirstTotal, p.LastTotal, p.StepsFollow, p.OutputDays)
	}
}

// printConfigs prints a row per configuration and side.
func printConfigs(w io.Writer, res *Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"kind", "rows", "hidden", "batch", "steps", "N", "Kairoscope s/epoch", "samples/s", "peak RSS"}
	if res.GPU.Available {
		head = append(head, "GPU s/epoch", "samples/s", "device mem")
	}
	head = append(head, "PyTorch s/epoch", "samples/s", "peak RSS", "Kairoscope/PyTorch")
	if res.GPU.Available {
		head = append(head, "GPU/PyTorch")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, c := range res.Configs {
		rows := []struct {
			kind  string
			k     *Side
			ratio float64
			gpu   bool
		}{{c.Kind, c.Kairoscope, c.Ratio, true}}
		if c.PureGo != nil {
			rows = append(rows, struct {
				kind  string
				k     *Side
				ratio float64
				gpu   bool
			}{"pure-go", c.PureGo, c.PureGoRatio, false})
		}
		for _, r := range rows {
			row := []string{r.kind, thousands(float64(c.Rows)), fmt.Sprint(c.Hidden), fmt.Sprint(c.Batch), fmt.Sprint(c.Steps), fmt.Sprint(c.Epochs)}
			row = append(row, side(r.k, false)...)
			if res.GPU.Available {
				if r.gpu {
					row = append(row, side(c.GPU, true)...)
				} else {
					row = append(row, side(nil, true)...)
				}
			}
			row = append(row, side(c.Torch, false)...)
			row = append(row, ratio(r.ratio))
			if res.GPU.Available {
				if r.gpu {
					row = append(row, ratio(c.GPURatio))
				} else {
					row = append(row, ratio(0))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
}

// printGPU names the GPU or, without one, says why and prints the
// emulator's counts.
func printGPU(w io.Writer, g GPUReport) {
	if g.Available {
		fmt.Fprintf(w, "GPU: %s\n", g.Device)
		return
	}
	fmt.Fprintf(w, "GPU unavailable: %s\n", g.Reason)
	if e := g.Emulator; e != nil {
		fmt.Fprintf(w, "GPU engine's device work, counted on the emulator (hidden %d, batch %d):\n", e.Config.Hidden, e.Config.Batch)
		fmt.Fprintf(w, "  per training step: %v\n", e.PerStep)
		fmt.Fprintf(w, "  per epoch, beyond its steps: %v\n", e.PerEpoch)
		fmt.Fprintf(w, "  per row of an epoch: %v\n", e.PerRow)
		fmt.Fprintf(w, "  per fold (the first epoch on new data, beyond a later one), %d rows: %v\n", e.Rows, e.PerFold)
		fmt.Fprintf(w, "  peak device memory on %d rows: %s\n", e.Rows, bytesString(e.PeakDeviceBytes))
	}
}

// printHub prints the hub benchmark, path by path side by side, against
// DESIGN.md's targets, then where the time goes: each run's p99, latency by
// message type, and the start latency.
func printHub(w io.Writer, h *hubload.Result) {
	r := h.Request
	fmt.Fprintf(w, "Hub: %s clients on plain /ws, each parsing every message whole as a JSON object, in a process of their own; %s; "+
		"run: %s, %d folds × %d epochs, %s worker; medians of %d interleaved runs a path, without and with the clients\n",
		thousands(float64(h.Clients)), h.Pinning, r.Dataset, r.Folds, r.Epochs, r.Device, h.Runs)
	if h.Load[0] != "" {
		fmt.Fprintf(w, "  load average (1, 5, 15 min): %s at the start, %s at the end\n", h.Load[0], h.Load[1])
	}
	for _, s := range h.Skipped {
		fmt.Fprintf(w, "  %s skipped: %s\n", s.Path, s.Reason)
	}
	if len(h.Paths) > 0 {
		printHubPaths(w, h)
	}
	if s := h.Start; s != nil {
		fmt.Fprintf(w, "Start: POST /api/runs → the run's first epoch_metrics on a /ws client, medians of %d: local (serve's own agent) %.3f s, through a kairoscope agent process %.3f s (runs: %s; %s)\n",
			s.Runs, s.LocalS, s.AgentS, joinFloats(s.LocalRuns, "%.3f"), joinFloats(s.AgentRuns, "%.3f"))
	}
}

func printHubPaths(w io.Writer, h *hubload.Result) {
	verdict := func(met bool) string {
		switch {
		case h.Clients < hubload.TargetClients:
			return "—"
		case met:
			return "met"
		}
		return "NOT MET"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, target string, cell func(p *hubload.PathResult) string) {
		fmt.Fprintf(tw, "  %s", name)
		for i := range h.Paths {
			fmt.Fprintf(tw, "\t%s", cell(&h.Paths[i]))
		}
		fmt.Fprintf(tw, "\t%s\t\n", target)
	}
	row("measure", "target", func(p *hubload.PathResult) string { return p.Path })
	row("delivery p99 (p50)", fmt.Sprintf("≤ %.0f ms", hubload.TargetP99MS), func(p *hubload.PathResult) string {
		lat, _, _ := p.Met(h.Clients)
		s := fmt.Sprintf("%.1f ms (%.1f) %s", p.P99, p.P50, verdict(lat))
		if !lat && h.Clients >= hubload.TargetClients && p.P99 > hubload.TargetP99MS {
			s += fmt.Sprintf(" %.0f×", p.P99/hubload.TargetP99MS)
		}
		return s
	})
	row("lost (unexpected, out of order)", "none", func(p *hubload.PathResult) string {
		return fmt.Sprintf("%s of %s (%s, %s)", thousands(float64(p.Lost)), thousands(float64(p.Deliveries)),
			thousands(float64(p.Unexpected)), thousands(float64(p.OutOfOrder)))
	})
	row("messages, bytes a client a run", "", func(p *hubload.PathResult) string {
		return fmt.Sprintf("%d of %d, %s", p.MessagesPerClient, p.Messages, bytesString(p.BytesPerClient))
	})
	row("training slowed", fmt.Sprintf("< %.2f×", hubload.TargetSlowdown), func(p *hubload.PathResult) string {
		_, slow, _ := p.Met(h.Clients)
		return fmt.Sprintf("%.2f× (%.2f → %.2f s) %s", p.Slowdown, p.AloneS, p.LoadedS, verdict(slow))
	})
	row("server RSS a connection (heap+stacks)", "≤ "+bytesString(hubload.TargetConnBytes), func(p *hubload.PathResult) string {
		_, _, mem := p.Met(h.Clients)
		heap := "—"
		if p.ConnBytes >= 0 {
			heap = bytesString(p.ConnBytes)
		}
		return fmt.Sprintf("%s (%s) %s", bytesString(p.ConnRSSBytes), heap, verdict(mem))
	})
	row("server CPU a run, alone → loaded (sys)", "", func(p *hubload.PathResult) string {
		return fmt.Sprintf("%.2f → %.2f s (%.2f)", p.ServerCPUAloneS, p.ServerCPULoadedS, p.ServerSysLoadedS)
	})
	row("clients' CPU a run (sys)", "", func(p *hubload.PathResult) string {
		return fmt.Sprintf("%.2f s (%.2f)", p.ClientsCPUS, p.ClientsSysS)
	})
	tw.Flush()
	for _, p := range h.Paths {
		fmt.Fprintf(w, "  %s: %s; each run's p99 %s ms; by type:", p.Path, p.Stack, joinFloats(p.RunsP99, "%.1f"))
		for _, t := range p.ByType {
			fmt.Fprintf(w, " %s %d× %s p99 %.1f ms;", t.Type, t.Messages, bytesString(int64(t.Bytes)), t.P99)
		}
		fmt.Fprintln(w)
	}
}

func joinFloats(v []float64, format string) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmt.Sprintf(format, f)
	}
	return strings.Join(s, ", ")
}

// side gives a Side's columns: s/epoch, samples/s and memory (the device's
// on a GPU, else peak RSS).
func side(s *Side, device bool) []string {
	if s == nil {
		return []string{"—", "—", "—"}
	}
	mem := s.PeakRSSBytes
	if device {
		mem = s.DeviceBytes
	}
	return []string{fmt.Sprintf("%.4f", s.SPerEpoch), thousands(s.SamplesPerS), bytesString(mem)}
}

func ratio(r float64) string {
	if r == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}

// thousands formats v rounded, with commas: 1,234,567.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesString is n in B, KiB, MiB or GiB.
func bytesString(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}
