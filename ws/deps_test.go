package ws

import (
	"os/exec"
	"strings"
	"testing"
)

// The server side never trains: it must not link Gorgonia or CUDA code, so
// a bug there can never take the server down.
func TestDoesNotLinkTrainingCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list printed %d packages: the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "gorgonia.org/") || strings.HasSuffix(d, "/engine") || strings.Contains(d, "/cuda") {
			t.Errorf("ws links %s", d)
		}
	}
}
