package hubload

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Pinning is where the server and the clients run: CPU lists for taskset
// -c, or why they are not pinned (Note). Pinned apart, the clients' reads
// never take the server's (and its worker's) CPU, as clients on other
// machines would not; on loopback the kernel still does part of each
// delivery's TCP work on the sender's CPU.
type Pinning struct {
	Server  string `json:"server_cpus,omitempty"`  // the server, its worker and its feed
	Clients string `json:"clients_cpus,omitempty"` // the clients process
	Note    string `json:"note,omitempty"`         // why not pinned, when not
}

// Pinned reports whether the server and the clients are pinned apart.
func (p Pinning) Pinned() bool { return p.Server != "" && p.Clients != "" }

// String says where each side runs.
func (p Pinning) String() string {
	if !p.Pinned() {
		return p.Note
	}
	return fmt.Sprintf("server on CPU %s, clients on CPU %s (taskset -c)", p.Server, p.Clients)
}

// DetectPinning splits the CPUs this process may run on in two halves,
// the first for the server, the second for the clients, when taskset is
// installed and there are at least two; else it says why not.
func DetectPinning() Pinning {
	if _, err := exec.LookPath("taskset"); err != nil {
		return Pinning{Note: "not pinned: taskset not found (util-linux); server and clients share every CPU"}
	}
	cpus, err := allowedCPUs()
	if err != nil {
		return Pinning{Note: "not pinned: " + err.Error()}
	}
	if len(cpus) < 2 {
		return Pinning{Note: fmt.Sprintf("not pinned: one CPU (%d) only; server and clients share it", cpus[0])}
	}
	half := len(cpus) / 2
	return Pinning{Server: cpuList(cpus[:half]), Clients: cpuList(cpus[half:])}
}

// command returns name and args run on cpus with taskset; as they are
// when cpus is "".
func (p Pinning) command(cpus, name string, args ...string) (string, []string) {
	if cpus == "" {
		return name, args
	}
	return "taskset", append([]string{"-c", cpus, name}, args...)
}

// allowedCPUs reads Cpus_allowed_list from /proc/self/status.
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("reading the CPUs allowed: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Cpus_allowed_list" {
			return parseCPUList(strings.TrimSpace(v))
		}
	}
	return nil, fmt.Errorf("no Cpus_allowed_list in /proc/self/status")
}

// parseCPUList reads a kernel CPU list: "0-3,6".
func parseCPUList(v string) ([]int, error) {
	var cpus []int
	for _, r := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		z := a
		if err == nil && isRange {
			z, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || z < a {
			return nil, fmt.Errorf("CPU list %q: not a list of CPUs and ranges", v)
		}
		for c := a; c <= z; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
