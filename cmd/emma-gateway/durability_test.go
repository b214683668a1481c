package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/devkafka"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

// openCallback is a distinct message_open callback for member n.
func openCallback(n int) string {
	return fmt.Sprintf(`{"event_name":"message_open","data":{"account_id":1743199,"member_id":%d,"mailing_id":5012345678,"subject":"load","timestamp":"@D:2026-11-20T10:01:02"}}`, 6000000000+n)
}

// load sends total callbacks from workers goroutines (POST and GET mixed)
// and returns the event ids answered 200 and the count of other answers.
func load(t *testing.T, base string, workers, total int, during func(sent int64)) (accepted map[string]bool, refused int64) {
	t.Helper()
	var mu sync.Mutex
	accepted = map[string]bool{}
	var next, refusedN atomic.Int64
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > total {
					return
				}
				if during != nil {
					during(int64(n))
				}
				payload := openCallback(n)
				var res *http.Response
				var err error
				target := base + "/webhooks/emma/" + testToken
				if n%2 == 0 {
					res, err = client.Post(target, "application/json", strings.NewReader(payload))
				} else {
					res, err = client.Get(target + "?payload=" + url.QueryEscape(payload))
				}
				if err != nil {
					refusedN.Add(1)
					continue
				}
				var body struct {
					EventID string `json:"event_id"`
				}
				_ = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					refusedN.Add(1)
					continue
				}
				mu.Lock()
				accepted[body.EventID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return accepted, refusedN.Load()
}

// waitDelivered polls the topic until every accepted id is on it.
func waitDelivered(t *testing.T, brokers []string, topic string, accepted map[string]bool, within time.Duration) {
	t.Helper()
	var missing int
	delivered := testutil.Poll(within, func() bool {
		seen := map[string]bool{}
		for _, m := range consume(t, brokers, topic) {
			for _, h := range m.Headers {
				if h.Key == kafkaevents.HeaderID {
					seen[string(h.Value)] = true
				}
			}
		}
		missing = 0
		for id := range accepted {
			if !seen[id] {
				missing++
			}
		}
		return missing == 0
	})
	if !delivered {
		t.Fatalf("%d of %d events answered 200 are not in Kafka after %s", missing, len(accepted), within)
	}
}

// TestBrokerFailureMidLoadLosesNoAcceptedEvent fails every Produce for 3
// seconds in the middle of a load of 3,000 callbacks at concurrency 16:
// every event answered 200 must be in Kafka afterwards.
func TestBrokerFailureMidLoadLosesNoAcceptedEvent(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, func(c *gateway.Config) {
		c.Kafka.Spool.Dir = t.TempDir()
		c.Kafka.Spool.After = 300 * time.Millisecond
	})
	failing := &atomic.Bool{}
	devkafka.FailProduce(tg.broker.Cluster(), failing, "")
	var once sync.Once
	const total = 3000
	accepted, refused := load(t, tg.url, 16, total, func(n int64) {
		if n == total/3 {
			once.Do(func() {
				failing.Store(true)
				time.AfterFunc(3*time.Second, func() { failing.Store(false) })
			})
		}
	})
	st := tg.kafka.Spool().Stats()
	t.Logf("%d accepted, %d refused; spool appended %d records in %d fsyncs", len(accepted), refused, st.Appended, st.Fsyncs)
	if st.Appended == 0 {
		t.Fatal("the failure never reached the spool: the test did not test it")
	}
	if len(accepted)+int(refused) != total {
		t.Fatalf("%d answers for %d callbacks", len(accepted)+int(refused), total)
	}
	waitDelivered(t, tg.brokers, "emma.message_open", accepted, 60*time.Second)
}

// TestNoSpoolAndBrokerDownIs503 checks that without a spool a callback
// Kafka does not take is refused, never answered 200.
func TestNoSpoolAndBrokerDownIs503(t *testing.T) {
	t.Parallel()
	tg := startTestGateway(t, func(c *gateway.Config) {
		c.Kafka.MaxAttempts = 1
		c.Receiver.PublishTimeout = 2 * time.Second
	})
	failing := &atomic.Bool{}
	failing.Store(true)
	devkafka.FailProduce(tg.broker.Cluster(), failing, "")
	status, body := tg.callback(t, http.MethodPost, openCallback(1))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %v", status, body)
	}
	if msgs := consume(t, tg.brokers, "emma.message_open"); len(msgs) != 0 {
		t.Fatalf("a refused event is in Kafka: %d", len(msgs))
	}
}

// TestLeaderMovesUnderLoadLoseNothing moves partition leaders around a
// three-broker cluster while callbacks flow.
func TestLeaderMovesUnderLoadLoseNothing(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg := startTestGatewayWith(t, []string{"--kafka-brokers", strings.Join(c.ListenAddrs(), ","), "--topic-replication-factor", "1"}, func(cfg *gateway.Config) {
		cfg.Kafka.Spool.Dir = t.TempDir()
		cfg.Kafka.Spool.After = 500 * time.Millisecond
	})
	stop := make(chan struct{})
	moved := make(chan int)
	go func() {
		n := 0
		defer func() { moved <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				c.ShufflePartitionLeaders()
				n++
			}
		}
	}()
	accepted, refused := load(t, tg.url, 16, 2000, nil)
	close(stop)
	t.Logf("%d accepted, %d refused, %d leader shuffles", len(accepted), refused, <-moved)
	if len(accepted) == 0 {
		t.Fatal("nothing accepted")
	}
	waitDelivered(t, tg.brokers, "emma.message_open", accepted, 60*time.Second)
}

// TestKilledGatewayReplaysSpoolOnRestart runs the real binary against a
// failing broker, kills it with SIGKILL while its events sit in the spool,
// and restarts it on the same directory once the broker is back: every
// event answered 200 must arrive.
func TestKilledGatewayReplaysSpoolOnRestart(t *testing.T) {
	t.Parallel()
	sg := newSpoolingGateway(t)
	start := func() (*exec.Cmd, *lockedBuffer) { return sg.start(t) }
	c, failing, spool, addr := sg.cluster, sg.failing, sg.spool, sg.addr
	first, _ := start()
	failing.Store(true)
	accepted, refused := load(t, "http://"+addr, 8, 200, nil)
	if len(accepted) != 200 || refused != 0 {
		t.Fatalf("with a spool every callback must be accepted: %d accepted, %d refused", len(accepted), refused)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	segs, _ := filepath.Glob(filepath.Join(spool, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no spool segment after the kill")
	}
	if msgs := consume(t, c.ListenAddrs(), "emma.message_open"); len(msgs) != 0 {
		t.Fatalf("%d events reached Kafka while it was failing: the test did not test the spool", len(msgs))
	}
	failing.Store(false)
	_, stderr := start()
	waitDelivered(t, c.ListenAddrs(), "emma.message_open", accepted, 60*time.Second)
	// The log is buffered (flushed every 200 ms), and the events may be
	// delivered sooner than that.
	if !testutil.Poll(5*time.Second, func() bool { return strings.Contains(stderr.String(), "previous run") }) {
		t.Error("the restarted gateway did not say it replays a previous run")
	}
}

// TestSecondSignalExitsAtOnceAndSpoolKeepsWhatWasAccepted holds a
// graceful shutdown open with a request whose body never finishes, sends a
// second SIGTERM, and checks that the process exits at once and that the
// events it had spooled are replayed by the next run.
func TestSecondSignalExitsAtOnceAndSpoolKeepsWhatWasAccepted(t *testing.T) {
	t.Parallel()
	sg := newSpoolingGateway(t,
		// Long enough that only the second signal can end the shutdown.
		"EMMA_GATEWAY_READ_TIMEOUT=60s", "EMMA_GATEWAY_WRITE_TIMEOUT=60s", "EMMA_GATEWAY_SHUTDOWN_TIMEOUT=60s")
	start := func() *exec.Cmd { cmd, _ := sg.start(t); return cmd }
	c, failing, addr := sg.cluster, sg.failing, sg.addr
	first := start()
	failing.Store(true)
	accepted, refused := load(t, "http://"+addr, 4, 50, nil)
	if len(accepted) != 50 || refused != 0 {
		t.Fatalf("%d accepted, %d refused", len(accepted), refused)
	}
	// A request whose body never completes keeps the graceful shutdown
	// waiting.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/emma/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{", testToken)
	time.Sleep(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	_ = first.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		t.Fatalf("exited (%v) while a request was in flight: the test cannot tell the second signal's effect", err)
	case <-time.After(time.Second):
	}
	sent := time.Now()
	_ = first.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("exit after the second signal: %v, want code 130", err)
		}
		t.Logf("exited %s after the second signal", time.Since(sent))
	case <-time.After(5 * time.Second):
		t.Fatal("no exit within 5 s of the second signal")
	}
	failing.Store(false)
	start()
	waitDelivered(t, c.ListenAddrs(), "emma.message_open", accepted, 60*time.Second)
}

// spoolingGateway runs the real binary with a spool against a kfake broker
// of the test's own, whose produce requests fail while failing is true.
type spoolingGateway struct {
	bin, spool, addr string
	cluster          *kfake.Cluster
	failing          *atomic.Bool
	env              []string
}

func newSpoolingGateway(t *testing.T, env ...string) *spoolingGateway {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	sg := &spoolingGateway{bin: buildBinary(t), spool: t.TempDir(), addr: freeAddr(t), cluster: c, failing: &atomic.Bool{}, env: env}
	devkafka.FailProduce(c, sg.failing, "")
	return sg
}

// start runs the binary on the same address and spool every time, and
// waits until it is ready.
func (sg *spoolingGateway) start(t *testing.T) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(sg.bin, "serve")
	cmd.Env = append(append(os.Environ(),
		"EMMA_GATEWAY_ADDR="+sg.addr,
		"EMMA_GATEWAY_KAFKA_BROKERS="+strings.Join(sg.cluster.ListenAddrs(), ","),
		"EMMA_GATEWAY_TOKENS="+testToken,
		"EMMA_GATEWAY_TOPIC_REPLICATION_FACTOR=1",
		"EMMA_GATEWAY_SPOOL_DIR="+sg.spool,
		"EMMA_GATEWAY_SPOOL_AFTER=200ms",
	), sg.env...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Log("gateway stderr:\n" + stderr.String())
		}
	})
	waitHealthy(t, "http://"+sg.addr)
	return cmd, stderr
}
