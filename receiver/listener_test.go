package receiver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emma-gateway/emma-gateway/events"
)

// startListening starts a real server on a loopback port.
func startListening(t *testing.T, mutate func(*Config), sink Sink) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Tokens = []string{token}
	if mutate != nil {
		mutate(&cfg)
	}
	set := testSettings(t)
	s, err := New(cfg, Deps{Decoder: events.NewDecoder(events.DecoderConfig{}), Sink: sink, Mounts: metricsMount(set)}, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// TestSlowlorisConnectionIsClosed trickles a request's headers one byte a
// second: the server must hang up once ReadHeaderTimeout has passed, long
// before the headers could be complete.
func TestSlowlorisConnectionIsClosed(t *testing.T) {
	s := startListening(t, func(c *Config) { c.ReadHeaderTimeout = time.Second }, &recorder{})
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /webhooks/emma/" + token + " HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
	done := make(chan struct{})
	defer close(done)
	go func() {
		for i := range len(head) {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
			if _, err := conn.Write([]byte{head[i]}); err != nil {
				return // closed by the server
			}
		}
	}()
	start := time.Now()
	// The trickle would take len(head) seconds; a server without a header
	// timeout keeps reading that long and the read below times out.
	if err := conn.SetReadDeadline(time.Now().Add(8 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s", time.Since(start).Round(time.Second))
	}
	if bytes.Contains(b, []byte("200 OK")) {
		t.Fatalf("a trickled request was served: %s", b)
	}
}

func TestRateLimitOnRealListener(t *testing.T) {
	s := startListening(t, func(c *Config) { c.RatePerIP, c.RateBurst = 0.001, 2 }, &recorder{})
	base := "http://" + s.Addr().String()
	for i := range 2 {
		if a := doRaw(t, post(t, base+"/webhooks/emma/"+token, "", openEvent)); a.status != 200 {
			t.Fatalf("request %d within the burst: %d", i, a.status)
		}
	}
	for _, req := range []*http.Request{
		post(t, base+"/webhooks/emma/"+token, "", openEvent),
		get(t, withPayload(base+"/webhooks/emma?token="+token, openEvent)),
		post(t, base+"/webhooks/emma/wrong-token-0000000000", "", openEvent), // before authentication
	} {
		a := doRaw(t, req)
		if a.status != 429 || a.header.Get("Retry-After") == "" {
			t.Fatalf("over the limit: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		for range 5 {
			if a := doRaw(t, get(t, base+p)); a.status != 200 {
				t.Fatalf("%s %d while webhooks are rate limited", p, a.status)
			}
		}
	}
}

// TestConcurrentClientsLoseNoAcceptedEvent: 200 clients send good and bad
// callbacks at once; every event answered 200 is in the sink, and nothing
// else is.
func TestConcurrentClientsLoseNoAcceptedEvent(t *testing.T) {
	sink := &recorder{}
	s := startListening(t, nil, sink)
	base := "http://" + s.Addr().String() + "/webhooks/emma/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	const clients, each = 200, 15
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		statuses = map[int]int{}
		wg       sync.WaitGroup
		failures = make(chan error, clients)
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := c*each + i
				body := fmt.Sprintf(`{"event_name":"message_open","data":{"account_id":1743199,"member_id":%d,"mailing_id":5012345678,"timestamp":"@D:2026-11-20T10:01:02"}}`, n+1)
				tok := token
				switch n % 5 {
				case 1:
					body = "not json " + body
				case 2:
					tok = "wrong-token-0000000000"
				case 3:
					body = strings.Replace(body, `"mailing_id":5012345678,`, "", 1) // invalid
				}
				res, err := client.Post(base+tok, "application/json", strings.NewReader(body))
				if err != nil {
					failures <- err
					return
				}
				var a Accepted
				_ = json.NewDecoder(res.Body).Decode(&a)
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				if res.StatusCode == 200 {
					answered[a.EventID] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	want := map[int]int{200: clients * each * 2 / 5, 400: clients * each / 5, 401: clients * each / 5, 422: clients * each / 5}
	for code, n := range want {
		if statuses[code] != n {
			t.Fatalf("statuses %v, want %v", statuses, want)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	recorded := map[string]bool{}
	for _, ev := range sink.events {
		if recorded[ev.ID] {
			t.Fatalf("event %s recorded twice", ev.ID)
		}
		recorded[ev.ID] = true
	}
	if len(recorded) != len(answered) {
		t.Fatalf("%d events answered 200, %d recorded", len(answered), len(recorded))
	}
	for id := range answered {
		if !recorded[id] {
			t.Fatalf("event %s answered 200 but not recorded", id)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with serial.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "emma-gateway test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
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
	mod := time.Now().Add(time.Duration(serial) * time.Second) // a new mtime for each pair
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), mod)
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), mod)
	return certFile, keyFile
}

func TestTLSServesHTTP2AndReloadsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	sink := &recorder{}
	s := startListening(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile }, sink)
	url := "https://" + s.Addr().String() + "/webhooks/emma/" + token

	// Each call makes a new connection, so each sees the current certificate;
	// the client trusts whatever the server presents and reports it.
	call := func() (*http.Response, int64) {
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(url, "application/json", strings.NewReader(openEvent))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	res, serial := call()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || serial != 1 {
		t.Fatalf("status %d over HTTP/%d with certificate %d", res.StatusCode, res.ProtoMajor, serial)
	}

	// A client that checks the certificate against its pool accepts it.
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	strict := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer strict.CloseIdleConnections()
	sres, err := strict.Get("https://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	sres.Body.Close()
	if sres.StatusCode != 200 || sres.ProtoMajor != 2 {
		t.Fatalf("healthz %d over HTTP/%d", sres.StatusCode, sres.ProtoMajor)
	}

	// Plain HTTP on the TLS port is not served.
	if pres, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		pres.Body.Close()
		if pres.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}

	writeCert(t, dir, 2)
	eventually(t, "the renewed certificate is served", func() bool {
		_, serial := call()
		return serial == 2
	})
}
