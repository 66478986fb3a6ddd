package datasets

import (
	"os"
	"testing"
)

func TestEmbeddedMatchSharedData(t *testing.T) {
	for name, shared := range map[string]string{"bike": "bike_sharing_dc_daily.csv", "sp500": "sp500_daily_ohlcv.csv"} {
		want, err := os.ReadFile("../../shared/data/" + shared)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := files.ReadFile(name + ".csv")
		if string(got) != string(want) {
			t.Errorf("%s differs from shared/data/%s", name, shared)
		}
	}
}

func TestLoadAndDescribe(t *testing.T) {
	infos, err := Describe()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "bike" || infos[0].Rows != 731 || infos[1].Target != "close" || infos[1].Frequency != "business-day" {
		t.Errorf("infos %+v", infos)
	}
	for _, bad := range []string{"", "../bike", "bike.csv", "SOURCES"} {
		if _, err := Load(bad); err == nil {
			t.Errorf("Load(%q) succeeded", bad)
		}
	}
}
