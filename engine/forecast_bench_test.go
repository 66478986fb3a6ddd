package engine

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// BenchmarkForecast times a 30-day forecast with the forecast defaults on
// the bike data and on the 5,700-day transit series (both embedded);
// KAIROSCOPE_BENCH_ENSEMBLE overrides the ensemble size, to profile one
// member: go test -run - -bench Forecast/transit -benchtime 1x -cpuprofile cpu.prof ./engine
func BenchmarkForecast(b *testing.B) {
	for _, name := range []string{"bike.csv", "transit.csv"} {
		b.Run(name[:len(name)-4], func(b *testing.B) {
			s := load(b, name)
			cfg := ForecastDefaults()
			if v, err := strconv.Atoi(os.Getenv("KAIROSCOPE_BENCH_ENSEMBLE")); err == nil {
				cfg.Ensemble = v
			}
			epochs := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Forecast(context.Background(), s, cfg, 30, func(step, total int) { epochs = step }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(epochs), "epochs")
		})
	}
}
