//go:build linux

package main

// The seed's Qt C++ client: its snippet, verbatim, inside the smallest
// program that runs it (testdata/seed_clients/training_client_qt.cpp), built
// by the tests with Debian's Qt 5 and g++.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	qtHint = "run `make test-deps` (as root) to install Debian's g++, pkg-config, qtbase5-dev and libqt5websockets5-dev"

	// qtClient is the seed's Qt snippet made a program; qtSeedBegin and
	// qtSeedEnd frame the seed's lines in it.
	qtClient    = "training_client_qt.cpp"
	qtSeedBegin = "// ---- seed: begin ----\n"
	qtSeedEnd   = "// ---- seed: end ----\n"
	qtBuildWait = 2 * time.Minute
)

// TestE2EQtClientHoldsTheSeedSnippet checks that the Qt program holds the
// seed document's Qt code block byte for byte between its markers.
func TestE2EQtClientHoldsTheSeedSnippet(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(seedsDir, "training-websocket-schema.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := bytes.Cut(doc, []byte("```cpp\n"))
	block, _, ok2 := bytes.Cut(block, []byte("```"))
	if !ok || !ok2 {
		t.Fatal("training-websocket-schema.md has no cpp code block")
	}
	src, err := os.ReadFile(filepath.Join("testdata", "seed_clients", qtClient))
	if err != nil {
		t.Fatal(err)
	}
	_, inside, ok := bytes.Cut(src, []byte(qtSeedBegin))
	inside, _, ok2 = bytes.Cut(inside, []byte(qtSeedEnd))
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", qtClient, qtSeedBegin, qtSeedEnd)
	}
	if !bytes.Equal(inside, block) {
		t.Errorf("the lines between the markers of testdata/seed_clients/%s differ from the cpp block of training-websocket-schema.md: copy it again, unchanged", qtClient)
	}
	if n := bytes.Count(src, []byte(seedAddr)); n != 1 {
		t.Errorf("%s names %s %d times, want once (the seed's line)", qtClient, seedAddr, n)
	}
}

// requireQt fails unless g++ and Qt 5's Core and WebSockets development
// files are installed.
func requireQt(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"g++", "pkg-config"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s: %v\n%s", tool, err, qtHint)
		}
	}
	if out, err := exec.Command("pkg-config", "--exists", "--print-errors", "Qt5Core", "Qt5WebSockets").CombinedOutput(); err != nil {
		t.Fatalf("pkg-config finds no Qt5Core and Qt5WebSockets: %v %s\n%s", err, bytes.TrimSpace(out), qtHint)
	}
}

// buildQtClient compiles the Qt client, its server address replaced by
// addr, as the seed's toolchain line says, and returns the program.
func buildQtClient(t *testing.T, addr string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, qtClient)
	if err := os.WriteFile(src, []byte(seedClient(t, qtClient, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "Qt5Core", "Qt5WebSockets").Output()
	if err != nil {
		t.Fatalf("pkg-config: %v\n%s", err, qtHint)
	}
	bin := filepath.Join(dir, "training_client_qt")
	args := append([]string{src, "-o", bin}, strings.Fields(string(flags))...)
	cmd := exec.Command("g++", append(args, "-fPIC")...)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(qtBuildWait):
		cmd.Process.Kill()
		<-done
		t.Fatalf("g++ did not build the Qt client within %v", qtBuildWait)
	}
	if err != nil {
		t.Fatalf("g++ %s: %v\n%s", qtClient, err, out)
	}
	return bin
}
