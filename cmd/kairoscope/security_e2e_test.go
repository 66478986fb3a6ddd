//go:build linux

package main

// Security end to end: the built server with TLS, a token that never
// reaches a log line, and requests that cannot hold it (a slow body, an
// idle connection, a slow request during SIGTERM).

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// secCert writes a self-signed certificate for 127.0.0.1 and localhost
// and its key to dir, and returns their paths and a pool trusting it.
func secCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kairoscope test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestE2ETLS serves https:// and wss:// with a certificate made here: the
// health JSON over HTTPS, a whole run followed over WSS, plain HTTP
// refused on the TLS port, and the flags checked.
func TestE2ETLS(t *testing.T) {
	certFile, keyFile, pool := secCert(t, t.TempDir())
	srv := startServerWith(t, nil, "--tls-cert", certFile, "--tls-key", keyFile, "--token", "tls-token")
	tlsCfg := &tls.Config{RootCAs: pool}
	client := &http.Client{Timeout: httpTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	req, _ := http.NewRequest("GET", "https://"+srv.addr+"/", nil)
	req.Header.Set("Authorization", "Bearer tls-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET https://%s/: %v", srv.addr, err)
	}
	var h struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.Status != "ok" || resp.TLS == nil {
		t.Fatalf("GET https:// %s %+v", resp.Status, h)
	}
	if resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + srv.addr + "/"); err == nil && resp.StatusCode == 200 {
		t.Errorf("plain HTTP on the TLS port answered 200")
	}

	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: connectWait}
	conn, _, err := d.Dial("wss://"+srv.addr+"/ws?token=tls-token", nil)
	if err != nil {
		t.Fatalf("dialing wss://: %v", err)
	}
	defer conn.Close()
	req, _ = http.NewRequest("POST", "https://"+srv.addr+"/api/runs", strings.NewReader(smallRunRequest))
	req.Header.Set("Authorization", "Bearer tls-token")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST over https: %v %v", resp, err)
	}
	conn.SetReadDeadline(time.Now().Add(smallRunWait))
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("reading wss://: %v", err)
		}
		var m struct{ Type string }
		json.Unmarshal(b, &m)
		if m.Type == "training_complete" {
			break
		}
		if m.Type == "training_error" {
			t.Fatalf("run failed: %s", b)
		}
	}

	bin, err := buildKairoscope()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--tls-cert", certFile, "--addr", "127.0.0.1:0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--tls-key") {
		t.Errorf("--tls-cert alone: %v %s, want exit 2 naming --tls-key", err, out)
	}
}

// TestE2ETokenNeverLogged sends the right and wrong tokens every way a
// client can (?token= on REST and WebSocket URLs, Bearer headers, refused
// and accepted, malformed requests) and checks that no log line of the
// server, its agent or its workers holds either.
func TestE2ETokenNeverLogged(t *testing.T) {
	const good, bad = "good-Tok3n-ZZ", "bad-Tok3n-QQ"
	srv := startServerWith(t, nil, "--token", good)
	c := &http.Client{Timeout: httpTimeout}
	base := "http://" + srv.addr
	for _, u := range []string{"/?token=" + bad, "/?token=" + good, "/api/runs?token=" + good, "/api/runs/run_nope?token=" + good,
		"/api/runs?token=" + bad, "/ws?token=" + good, "/ws/predict?horizon=0&token=" + good, "/nope?token=" + bad, "/dashboard?token=" + good} {
		if resp, err := c.Get(base + u); err == nil {
			resp.Body.Close()
		}
	}
	for _, tok := range []string{good, bad} {
		req, _ := http.NewRequest("POST", base+"/api/runs?token="+tok, strings.NewReader(smallRunRequest))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	for _, tok := range []string{good, bad} {
		if conn, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/ws?token="+tok, http.Header{"Origin": {"https://evil.example"}}); err == nil {
			conn.Close()
		}
		if conn, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/ws?token="+tok, nil); err == nil {
			conn.SetReadDeadline(time.Now().Add(smallRunWait))
			for { // the run started above, to its end: the worker's logs too
				_, b, err := conn.ReadMessage()
				if err != nil || strings.Contains(string(b), `"training_complete"`) || strings.Contains(string(b), `"training_error"`) {
					break
				}
			}
			conn.Close()
		}
	}
	// Malformed requests carrying it: a bad Host, a bad header, an oversized one.
	for _, raw := range []string{
		"GET /?token=" + good + " HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET /?token=" + good + " HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
		"GET /?token=" + good + " HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 128<<10) + "\r\n\r\n",
		"GET /ws?token=" + good + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
	} {
		if conn, err := net.DialTimeout("tcp", srv.addr, httpTimeout); err == nil {
			conn.SetDeadline(time.Now().Add(httpTimeout))
			io.WriteString(conn, raw)
			io.Copy(io.Discard, bufio.NewReader(conn))
			conn.Close()
		}
	}
	srv.signal(t, syscall.SIGTERM)
	if err := srv.wait(serverStopWait); err != nil {
		t.Fatal(err)
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, "run queued") {
		t.Fatalf("the run was not started: the test proves nothing\n%s", srv.logs.tail(40))
	}
	for _, tok := range []string{good, bad} {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, tok) {
				t.Errorf("a log line holds a token: %s", line)
			}
		}
	}
}

// TestE2ESlowClients: a body sent slowly is cut at --read-timeout, an
// idle keep-alive connection at --idle-timeout, and a request still
// sending its body when SIGTERM comes neither holds nor fails the exit.
func TestE2ESlowClients(t *testing.T) {
	srv := startServerWith(t, nil, "--read-timeout", "1s", "--idle-timeout", "1s")
	// A slow body: the headers, then one byte of 100.
	slow := func() net.Conn {
		conn, err := net.DialTimeout("tcp", srv.addr, httpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		return conn
	}
	closedWithin := func(conn net.Conn, d time.Duration) bool {
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn) // until the server closes
		return err == nil
	}
	start := time.Now()
	if conn := slow(); !closedWithin(conn, 5*time.Second) {
		t.Errorf("a slow body was held for more than 5 s with --read-timeout 1s")
	} else {
		t.Logf("slow body cut after %v", time.Since(start).Round(10*time.Millisecond))
	}
	idle, err := net.DialTimeout("tcp", srv.addr, httpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	br := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("an idle connection was not closed within 5 s with --idle-timeout 1s: %v", err)
	}

	// SIGTERM with a slow request in progress: exit 0 (the cleanup checks).
	srv2 := startServer(t)
	conn, err := net.DialTimeout("tcp", srv2.addr, httpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	time.Sleep(200 * time.Millisecond) // the request is in its handler
	srv2.signal(t, syscall.SIGTERM)
	if err := srv2.wait(serverStopWait); err != nil {
		t.Errorf("SIGTERM during a slow request: %v", err)
	}
}

// TestE2EExposedWarning: beyond loopback without a token the server warns
// at start, whatever --allowed-origins says (origins stop browsers, not
// programs); on loopback it does not.
func TestE2EExposedWarning(t *testing.T) {
	const warn = "listening beyond loopback without --token"
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--addr", "0.0.0.0:0"}, true},
		{[]string{"--addr", "0.0.0.0:0", "--allowed-origins", "https://dash.example"}, true},
		{[]string{"--addr", "0.0.0.0:0", "--token", "t"}, false},
		{nil, false},
	} {
		srv := startServerWith(t, nil, tc.args...)
		srv.signal(t, syscall.SIGTERM)
		if err := srv.wait(serverStopWait); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(srv.logs.String(), warn); got != tc.want {
			t.Errorf("serve %v: warning %v, want %v", tc.args, got, tc.want)
		}
	}
}
