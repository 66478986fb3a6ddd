package hubload

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"0": {0}, "0-1": {0, 1}, "0,2-4,7": {0, 2, 3, 4, 7}} {
		got, err := parseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "0,,1", "-1", "1-"} {
		if got, err := parseCPUList(in); err == nil {
			t.Errorf("parseCPUList(%q) = %v; want an error", in, got)
		}
	}
}

// A pinned side runs under taskset -c; an unpinned one as it is.
func TestPinningCommand(t *testing.T) {
	p := Pinning{Server: "0", Clients: "1"}
	name, args := p.command(p.Clients, "hubload", "clients", "-n", "5")
	if name != "taskset" || !slices.Equal(args, []string{"-c", "1", "hubload", "clients", "-n", "5"}) {
		t.Errorf("pinned: %s %q", name, args)
	}
	name, args = Pinning{Note: "not pinned"}.command("", "hubload", "clients")
	if name != "hubload" || !slices.Equal(args, []string{"clients"}) {
		t.Errorf("unpinned: %s %q", name, args)
	}
	if d := DetectPinning(); d.Pinned() == (d.Note != "") {
		t.Errorf("DetectPinning() = %+v: want CPU lists or a note saying why not", d)
	}
}
