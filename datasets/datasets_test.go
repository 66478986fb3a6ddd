package datasets

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
)

// Every embedded dataset is the file SOURCES.md describes: its sha256 is the
// one in the table (the shared sample data's own checksum), so a file
// changed or swapped without its provenance fails here.
func TestEmbeddedMatchSources(t *testing.T) {
	src, err := files.ReadFile("SOURCES.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9]+)`[^|]*\\| `([a-z0-9]+\\.csv)` \\| `([0-9a-f]{64})` \\|")
	listed := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		name, file, sum := m[1], m[2], m[3]
		listed[name] = true
		if file != name+".csv" {
			t.Errorf("SOURCES.md lists %s as %s, want %s.csv", name, file, name)
		}
		b, err := files.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s has sha256 %x, SOURCES.md says %s", file, h, sum)
		}
	}
	for _, n := range Names() {
		if !listed[n] {
			t.Errorf("dataset %s has no row with a sha256 in SOURCES.md", n)
		}
	}
}

func TestLoadAndList(t *testing.T) {
	infos, err := Embedded().List()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Name != "bike" || infos[0].Rows != 731 || infos[1].Target != "close" || infos[1].Frequency != "business-day" ||
		infos[2].Name != "transit" || infos[2].Rows != 5700 || infos[2].Frequency != "daily" {
		t.Errorf("infos %+v", infos)
	}
	for _, i := range infos {
		if i.Source != SourceEmbedded || !i.ReadOnly || len(i.Hash) != 64 || i.Error != "" || i.Description == "" {
			t.Errorf("%+v", i)
		}
	}
	if !infos[1].OHLCV || len(infos[1].Columns) != 6 || infos[0].Columns[1] != "value" {
		t.Errorf("columns %v %v", infos[0].Columns, infos[1].Columns)
	}
	for _, bad := range []string{"", "../bike", "bike.csv", "SOURCES"} {
		if _, err := Load(bad); err == nil {
			t.Errorf("Load(%q) succeeded", bad)
		}
	}
}
