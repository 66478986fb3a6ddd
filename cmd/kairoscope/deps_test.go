package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The server and CPU worker must start on machines without CUDA: linking
// gorgonia.org/cu makes a binary need libcuda and exit in init when there is
// no GPU. Only cmd/kairoscope-cuda may link it.
func TestDoesNotLinkCUDA(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !contains(deps, "gorgonia.org/gorgonia") {
		t.Fatalf("go list printed %d packages without gorgonia: the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		if d == "gorgonia.org/cu" || strings.HasPrefix(d, "gorgonia.org/cu/") {
			t.Errorf("cmd/kairoscope links %s", d)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
