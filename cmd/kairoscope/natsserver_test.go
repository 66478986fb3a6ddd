//go:build linux

package main

// nats-server processes for the fault tests: the server built from the
// module this repository requires, and Debian's when it is installed. Each
// runs on loopback with JetStream on a store folder of its own; a test can
// pause it (SIGSTOP), kill it (SIGKILL) and start it again on its store and
// port.

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// debianNATS is where Debian's nats-server package (2.9.10 in bookworm)
// puts the server.
const debianNATS = "/usr/sbin/nats-server"

// natsReadyWait bounds a nats-server's start, store recovery included.
const natsReadyWait = 20 * time.Second

// natsBinary is one nats-server build the fault tests run against.
type natsBinary struct {
	name string // for subtest names: "module" or "debian"
	path string
}

// buildNATSServer builds the nats-server of go.mod once per test binary.
var buildNATSServer = buildOnce("nats-server", "", "github.com/nats-io/nats-server/v2")

// natsBinaries returns the module's nats-server, and Debian's when
// installed.
func natsBinaries(t *testing.T) []natsBinary {
	t.Helper()
	bin, err := buildNATSServer()
	if err != nil {
		t.Fatal(err)
	}
	out := []natsBinary{{"module", bin}}
	if st, err := os.Stat(debianNATS); err == nil && !st.IsDir() {
		out = append(out, natsBinary{"debian", debianNATS})
	}
	return out
}

// natsServer is one nats-server process with JetStream, on a port and a
// store that outlive the process, so that it can be started again on them.
type natsServer struct {
	bin     string
	store   string
	port    int
	version string // as the server logs it
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}

	// A node of a cluster (startNATSCluster): its name, the arguments and
	// environment it runs with besides -a and -p, and the clients' token.
	name, token string
	args, env   []string
}

// startNATS starts bin on a free loopback port with a fresh store and
// waits until it is ready. The test's cleanup stops it.
func startNATS(t *testing.T, bin string) *natsServer {
	t.Helper()
	ns := &natsServer{bin: bin, store: t.TempDir(), port: freePort(t), logs: &syncBuffer{}}
	ns.start(t)
	t.Cleanup(func() {
		ns.stop()
		if t.Failed() {
			t.Logf("nats-server log (last %d lines):\n%s", serverLogTail, ns.logs.tail(serverLogTail))
		}
	})
	return ns
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL is the server's client URL.
func (ns *natsServer) URL() string {
	if ns.token != "" {
		return "nats://" + ns.token + "@127.0.0.1:" + strconv.Itoa(ns.port)
	}
	return "nats://127.0.0.1:" + strconv.Itoa(ns.port)
}

// clusterConf is the NATS configuration deploy/ ships, one node's.
const clusterConf = "../../deploy/nats/nats.conf"

// startNATSCluster starts a three-node cluster of bin, each node running
// deploy/nats/nats.conf as shipped, with the environment and --routes the
// deployment guide gives it (on loopback: ports of its own), and waits
// until all are ready. It returns the nodes and the clients' URL list.
func startNATSCluster(t *testing.T, bin string) ([]*natsServer, string) {
	t.Helper()
	const token = "fault-token"
	nodes := make([]*natsServer, 3)
	routePorts := make([]int, 3)
	var routes []string
	for i := range nodes {
		routePorts[i] = freePort(t)
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(routePorts[i]))
	}
	var urls []string
	for i := range nodes {
		ns := &natsServer{bin: bin, store: t.TempDir(), port: freePort(t), logs: &syncBuffer{}, token: token,
			name: "nats-" + strconv.Itoa(i+1)}
		ns.env = []string{"NATS_NODE=" + ns.name, "NATS_STORE=" + ns.store, "NATS_TOKEN=" + token}
		ns.args = []string{"--config", clusterConf, "--routes", strings.Join(routes, ","),
			"--cluster", "nats://127.0.0.1:" + strconv.Itoa(routePorts[i]), "-m", strconv.Itoa(freePort(t))}
		nodes[i] = ns
		urls = append(urls, ns.URL())
	}
	for _, ns := range nodes {
		ns.start(t) // ready for clients before its routes are up
		t.Cleanup(func() {
			ns.stop()
			if t.Failed() {
				t.Logf("%s log (last %d lines):\n%s", ns.name, serverLogTail, ns.logs.tail(serverLogTail))
			}
		})
	}
	url := strings.Join(urls, ",")
	waitJetStream(t, url)
	return nodes, url
}

// waitJetStream waits until the cluster at url has elected its JetStream
// meta leader and answers account requests, as the deployment guide has
// the nodes up before serve starts.
func waitJetStream(t *testing.T, url string) {
	t.Helper()
	pollJetStream(t, url, natsReadyWait, "the NATS cluster's JetStream ready", func(ctx context.Context, js jetstream.JetStream) error {
		_, err := js.AccountInfo(ctx)
		return err
	})
}

// pollJetStream calls try through a connection to url (any node) every
// 200 ms until it returns nil, failing the test after d.
func pollJetStream(t *testing.T, url string, d time.Duration, what string, try func(context.Context, jetstream.JetStream) error) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := try(ctx, js)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// start runs the server on its port and store, and waits until it is
// ready for clients (its store recovered).
func (ns *natsServer) start(t *testing.T) {
	t.Helper()
	args := ns.args
	if args == nil {
		args = []string{"-js", "-sd", ns.store}
	}
	ns.cmd = exec.Command(ns.bin, append(args, "-a", "127.0.0.1", "-p", strconv.Itoa(ns.port))...)
	ns.cmd.Env = append(os.Environ(), ns.env...)
	ns.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := ns.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	ns.cmd.Stdout = io.Discard
	if err := ns.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	ns.exited = exited
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ns.logs.Write([]byte(line + "\n"))
			if _, v, ok := strings.Cut(line, "Version:"); ok && ns.version == "" {
				ns.version = strings.TrimSpace(v)
			}
			if strings.Contains(line, "Server is ready") {
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		ns.cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("nats-server exited before it was ready:\n%s", ns.logs.tail(serverLogTail))
	case <-time.After(natsReadyWait):
		t.Fatalf("nats-server not ready within %v:\n%s", natsReadyWait, ns.logs.tail(serverLogTail))
	}
}

// pause stops the server (SIGSTOP) and resume continues it (SIGCONT): its
// clients' connections stay open, unanswered.
func (ns *natsServer) pause(t *testing.T) {
	t.Helper()
	if err := ns.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

func (ns *natsServer) resume(t *testing.T) {
	t.Helper()
	if err := ns.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// kill SIGKILLs the server and waits until it is gone.
func (ns *natsServer) kill(t *testing.T) {
	t.Helper()
	ns.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-ns.exited:
	case <-time.After(serverStopWait):
		t.Fatal("nats-server did not die of SIGKILL")
	}
}

// stop ends the server, whatever its state: resumed if paused, then
// SIGTERM, then SIGKILL.
func (ns *natsServer) stop() {
	select {
	case <-ns.exited:
		return
	default:
	}
	ns.cmd.Process.Signal(syscall.SIGCONT)
	ns.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ns.exited:
	case <-time.After(serverStopWait):
		ns.cmd.Process.Signal(syscall.SIGKILL)
		<-ns.exited
	}
}
