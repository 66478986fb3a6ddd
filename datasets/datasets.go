package datasets

import (
	"bytes"
	"embed"
	"fmt"
	"sort"
	"strings"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

//go:embed *.csv SOURCES.md
var files embed.FS

// Default is the dataset used when a client names none: an affluence
// series, what the prediction pipeline forecasts.
const Default = "bike"

// Info describes one embedded dataset.
type Info struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Rows        int    `json:"rows"`
	First       string `json:"first"`
	Last        string `json:"last"`
	Frequency   string `json:"frequency"`
	Target      string `json:"target"`
}

var descriptions = map[string]string{
	"bike":    "Capital Bikeshare daily rentals, Washington DC (UCI, CC BY 4.0)",
	"sp500":   "S&P 500 daily OHLCV, trading days (vega-datasets, BSD-3-Clause)",
	"transit": "daily public-transit boardings, 5,700 days (generated: benchmarks/cmd/genseries)",
}

// Names lists the embedded datasets.
func Names() []string {
	names := make([]string, 0, len(descriptions))
	for n := range descriptions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load parses the embedded dataset name.
func Load(name string) (*dataset.Series, error) {
	if _, ok := descriptions[name]; !ok {
		return nil, fmt.Errorf("unknown dataset %q (available: %s)", name, strings.Join(Names(), ", "))
	}
	b, err := files.ReadFile(name + ".csv")
	if err != nil {
		return nil, err
	}
	return dataset.Read(bytes.NewReader(b), name+".csv", dataset.Options{})
}

// Describe summarises every embedded dataset.
func Describe() ([]Info, error) {
	var out []Info
	for _, n := range Names() {
		s, err := Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Info{Name: n, Description: descriptions[n], Rows: s.Len(),
			First: s.Dates[0].Format("2006-01-02"), Last: s.Dates[s.Len()-1].Format("2006-01-02"),
			Frequency: s.Freq.String(), Target: s.Target})
	}
	return out, nil
}
