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

// printHub prints the hub benchmark against DESIGN.md's targets, then
// where the time goes: latency by message type and each process's CPU.
func printHub(w io.Writer, h *hubload.Result) {
	fmt.Fprintf(w, "Hub: %s WebSocket clients on loopback in their own process during a training run (dataset %s, engine defaults, %s worker): %d messages, %s a client; medians of %d interleaved runs without and with them\n",
		thousands(float64(h.Clients)), h.Request.Dataset, h.Request.Device, h.Messages, bytesString(h.BytesPerClient), h.Runs)
	_, slowMet, memMet := h.Met()
	verdict := func(met bool, by string) string {
		switch {
		case h.Clients < hubload.TargetClients:
			return fmt.Sprintf("— (the target is for %s clients)", thousands(hubload.TargetClients))
		case met:
			return "met"
		}
		return "NOT MET" + by
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  measure\tmeasured\ttarget\t")
	fmt.Fprintf(tw, "  delivery latency p99 (p50, max)\t%.1f ms (%.1f, %.1f)\t≤ %.0f ms\t%s\n", h.Latency.P99, h.Latency.P50, h.Latency.Max,
		hubload.TargetP99MS, verdict(h.Latency.P99 <= hubload.TargetP99MS, fmt.Sprintf(": %.1f×", h.Latency.P99/hubload.TargetP99MS)))
	fmt.Fprintf(tw, "  lost (out of order)\t%s of %s (%s)\tnone\t%s\n", thousands(float64(h.Lost)), thousands(float64(h.Deliveries)),
		thousands(float64(h.OutOfOrder)), verdict(h.Lost == 0 && h.OutOfOrder == 0, ""))
	fmt.Fprintf(tw, "  training slowed\t%.2f× (%.2f s → %.2f s)\t< %.2f×\t%s\n", h.Slowdown, h.AloneS, h.LoadedS, hubload.TargetSlowdown, verdict(slowMet, ""))
	fmt.Fprintf(tw, "  memory per connection\t%s heap+stacks (%s RSS)\t≤ %s\t%s\n", bytesString(h.ConnBytes), bytesString(h.ConnRSSBytes),
		bytesString(hubload.TargetConnBytes), verdict(memMet, ""))
	tw.Flush()
	p99s := make([]string, len(h.RunsP99))
	for i, p := range h.RunsP99 {
		p99s[i] = fmt.Sprintf("%.1f", p)
	}
	fmt.Fprintf(w, "  each loaded run's p99: %s ms\n", strings.Join(p99s, ", "))
	fmt.Fprintf(w, "  CPU per run (kernel's share): server with its worker %.2f s (%.2f) alone, %.2f s (%.2f) loaded; the clients' process %.2f s (%.2f)\n",
		h.ServerCPUAloneS, h.ServerSysAloneS, h.ServerCPULoadedS, h.ServerSysLoadedS, h.ClientsCPUS, h.ClientsSysS)
	fmt.Fprintln(w, "  latency by message type (messages a run × mean frame):")
	for _, t := range h.ByType {
		fmt.Fprintf(w, "    %-18s %3d × %-9s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms\n", t.Type, t.Messages, bytesString(int64(t.Bytes)), t.P50, t.P99, t.Max)
	}
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
