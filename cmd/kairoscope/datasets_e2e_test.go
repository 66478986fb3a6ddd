//go:build linux

package main

// The datasets folder survives a server killed in the middle of a write:
// the built server runs as a child process, is SIGKILLed while an upload
// streams in, while an upload and while an append wait to be renamed into
// place (the KAIROSCOPE_TEST_COMMIT_PAUSE hook), and a new server on the
// same folder finds every dataset whole.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const killWait = 20 * time.Second // a write to reach the point where the test kills

// daysCSV is a daily date,value series of n rows from start, values from
// base.
func daysCSV(start string, n, base int) string {
	d, _ := time.Parse(time.DateOnly, start)
	var b strings.Builder
	b.WriteString("date,value\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,%d\n", d.AddDate(0, 0, i).Format(time.DateOnly), base+i%101)
	}
	return b.String()
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// kill SIGKILLs the process, as a crash would, and waits for it to die.
func (c *child) kill(t *testing.T) {
	t.Helper()
	c.killed = true
	c.signal(t, os.Kill)
	select {
	case <-c.exited:
	case <-time.After(serverStopWait):
		t.Fatalf("%s did not die of SIGKILL", c.what)
	}
}

// waitFor polls cond until it holds, or fails after killWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(killWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// temps lists the temporary files of the folder.
func temps(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	return m
}

// checkWhole checks that the folder holds exactly want (file → content),
// plus the versions folder, and nothing half-written.
func checkWhole(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for file, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != content {
			t.Errorf("%s: %d bytes (%v), want the previous version's %d: ends %q", file, len(b), err, len(content), b[max(0, len(b)-40):])
		}
	}
}

func TestE2EDatasetsSurviveKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "datasets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two datasets put in the folder by hand: big enough that an upload
	// replacing one streams for a while.
	big := daysCSV("1990-01-01", 20000, 1000)
	grow := daysCSV("2020-01-01", 400, 10)
	for file, content := range map[string]string{"big.csv": big, "grow.csv": grow} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"big.csv": big, "grow.csv": grow}
	pause := []string{commitPauseEnv + "=1m"}

	// 1. Killed while an upload streams in: the server has written part of
	// it to a temporary file.
	srv := startServerWith(t, pause, "--datasets", dir)
	pr, pw := io.Pipe()
	go func() {
		req, _ := http.NewRequest("POST", "http://"+srv.addr+"/api/datasets?name=big&replace=true", pr)
		req.Header.Set("Content-Type", "text/csv")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	replacement := daysCSV("1980-01-01", 30000, 5)
	go pw.Write([]byte(replacement[:len(replacement)/2])) // and no more: the body stalls half-way
	waitFor(t, "the upload's temporary file to fill", func() bool {
		for _, p := range temps(dir) {
			if st, err := os.Stat(p); err == nil && st.Size() > 0 {
				return true
			}
		}
		return false
	})
	srv.kill(t)
	pw.Close()
	if len(temps(dir)) == 0 {
		t.Fatal("no temporary file: the kill did not land in the middle of the upload")
	}
	checkWhole(t, dir, want)

	// 2. Killed between writing a whole upload and renaming it in.
	srv = startServerWith(t, pause, "--datasets", dir)
	if n := len(temps(dir)); n != 0 {
		t.Errorf("the restarted server left %d temporary files", n)
	}
	go post(srv.addr, "/api/datasets?name=big&replace=true", "text/csv", replacement)
	waitFor(t, "the upload to pause before its rename", func() bool { return strings.Contains(srv.logs.String(), "dataset write paused before commit") })
	srv.kill(t)
	checkWhole(t, dir, want)

	// 3. Killed between writing an appended file and renaming it in.
	srv = startServerWith(t, pause, "--datasets", dir)
	go post(srv.addr, "/api/datasets/grow/rows", "text/csv", "2021-02-04,1\n2021-02-05,2\n")
	waitFor(t, "the append to pause before its rename", func() bool { return strings.Contains(srv.logs.String(), "dataset write paused before commit") })
	srv.kill(t)
	checkWhole(t, dir, want)
	if len(temps(dir)) == 0 {
		t.Error("no temporary file: the append was not killed before its rename")
	}

	// A server on the same folder lists both datasets whole, as they were,
	// and no temporary file; appends work again.
	srv = startServerWith(t, nil, "--datasets", dir)
	resp, err := http.Get("http://" + srv.addr + "/api/datasets")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Name, File, Hash, Last, Error string
		Rows                          int
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	got := map[string]string{}
	for _, d := range list {
		got[d.Name] = fmt.Sprintf("%s %d %s %s", d.File, d.Rows, d.Hash, d.Error)
	}
	wantList := map[string]string{"big": "big.csv 20000 " + hash(big) + " ", "grow": "grow.csv 400 " + hash(grow) + " "}
	if len(list) != 5 || got["big"] != wantList["big"] || got["grow"] != wantList["grow"] {
		t.Errorf("after the kills the server lists %v, want bike, sp500, transit and %v", got, wantList)
	}
	if n := len(temps(dir)); n != 0 {
		t.Errorf("%d temporary files after the restart", n)
	}
	if code, b := post(srv.addr, "/api/datasets/grow/rows", "text/csv", "2021-02-04,1\n"); code != 200 {
		t.Errorf("append after the restart: %d %s", code, b)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "grow.csv"))
	if string(b) != grow+"2021-02-04,1\n" {
		t.Errorf("grow.csv after the append ends %q", b[len(b)-40:])
	}
}

// post sends body and returns the status and the answer.
func post(addr, path, contentType, body string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Post("http://"+addr+path, contentType, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
