package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

// Every limit of RELIABILITY.md is a flag of serve, and the agent's job
// limits are flags of kairoscope agent too.
func TestLimitFlags(t *testing.T) {
	agentLimits := []string{"--max-run-time", "--max-forecast-time", "--max-job-bytes", "--worker-silence", "--worker-log-lines"}
	serveLimits := append([]string{"--max-connections", "--max-message-bytes", "--send-queue", "--keep-ended", "--history-messages",
		"--history-run-bytes", "--history-bytes", "--max-run-cost", "--runs-per-minute", "--run-burst", "--forecast-grace",
		"--max-queued-runs", "--max-queued-forecasts", "--read-header-timeout", "--read-timeout", "--write-timeout", "--idle-timeout",
		"--max-header-bytes", "--max-body-bytes", "--allowed-origins", "--allowed-hosts", "--tls-cert", "--tls-key", "--token", "--max-dataset-bytes", "--keep-runs"}, agentLimits...)
	for cmd, want := range map[string][]string{"serve": serveLimits, "agent": agentLimits} {
		_, help, err := run(t, cmd, "--help")
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		for _, f := range want {
			if !strings.Contains(help, "  -"+strings.TrimPrefix(f, "--")+" ") && !strings.Contains(help, "  -"+strings.TrimPrefix(f, "--")+"\n") {
				t.Errorf("%s --help lacks %s", cmd, f)
			}
		}
	}
	if _, _, err := run(t, "serve", "--tls-key", "k.pem"); exitCode(err) != 2 {
		t.Errorf("--tls-key alone: %v, want a usage error", err)
	}
}
