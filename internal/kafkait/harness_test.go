package kafkait

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/internal/testutil"
)

// The variables deploy/kafka/cluster.sh writes to its it.env.
const (
	envBrokers       = "EMMA_GATEWAY_IT_BROKERS"
	envSASLBrokers   = "EMMA_GATEWAY_IT_SASL_BROKERS"
	envSASLUsername  = "EMMA_GATEWAY_IT_SASL_USERNAME"
	envSASLPassword  = "EMMA_GATEWAY_IT_SASL_PASSWORD"
	envCAFile        = "EMMA_GATEWAY_IT_CA_FILE"
	envCluster       = "EMMA_GATEWAY_IT_CLUSTER"
	envClusterScript = "EMMA_GATEWAY_IT_CLUSTER_SCRIPT"
	envPython        = "EMMA_GATEWAY_IT_PYTHON"
	// envLogDir, when set, keeps every gateway's log there (for a look at a
	// scenario that passed).
	envLogDir = "EMMA_GATEWAY_IT_LOG_DIR"
)

// token is the webhook token of every gateway the suite starts.
const token = "integration-token-0123456789"

// cluster is the Apache Kafka cluster under test, from the environment.
type cluster struct {
	brokers      []string
	saslBrokers  []string
	saslUsername string
	saslPassword string
	caFile       string
	dir          string
	script       string
	transport    *kafka.Transport
}

// needCluster returns the cluster the environment names, or skips the test
// when it names none. Once EMMA_GATEWAY_IT_BROKERS is set, every other
// variable is required: a half-configured run fails instead of skipping.
func needCluster(t *testing.T) *cluster {
	t.Helper()
	b := os.Getenv(envBrokers)
	if b == "" {
		t.Skipf("%s is not set: no Apache Kafka cluster to test against (bash deploy/kafka/it.sh runs this suite with one)", envBrokers)
	}
	c := &cluster{
		brokers:      strings.Split(b, ","),
		saslBrokers:  strings.Split(os.Getenv(envSASLBrokers), ","),
		saslUsername: os.Getenv(envSASLUsername),
		saslPassword: os.Getenv(envSASLPassword),
		caFile:       os.Getenv(envCAFile),
		dir:          os.Getenv(envCluster),
		script:       os.Getenv(envClusterScript),
		transport:    &kafka.Transport{},
	}
	t.Cleanup(c.transport.CloseIdleConnections)
	for name, v := range map[string]string{envSASLBrokers: os.Getenv(envSASLBrokers), envSASLUsername: c.saslUsername,
		envSASLPassword: c.saslPassword, envCAFile: c.caFile, envCluster: c.dir, envClusterScript: c.script} {
		if v == "" {
			t.Fatalf("%s is set but %s is not (source the cluster's it.env)", envBrokers, name)
		}
	}
	return c
}

// control runs cluster.sh (kill, stop-node, start-node) on one node.
func (c *cluster) control(t *testing.T, verb string, node int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "bash", c.script, verb, c.dir, strconv.Itoa(node)).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s %d: %v\n%s", verb, node, err, out)
	}
	t.Logf("cluster.sh %s %d: %v", verb, node, time.Since(start).Round(10*time.Millisecond))
}

// ensureAllUp starts any node a failed earlier test left stopped, so that one
// failure does not cascade into the next test.
func (c *cluster) ensureAllUp(t *testing.T) {
	t.Helper()
	for i := range c.brokers {
		out, _ := exec.Command("bash", c.script, "status", c.dir).Output()
		if !strings.Contains(string(out), fmt.Sprintf("node %d: running", i+1)) {
			c.control(t, "start-node", i+1)
		}
	}
}

// client is a kafka-go admin client on the PLAINTEXT listeners. Its
// transport's connection pool is dropped first, so that it does not answer
// from metadata cached before a test moved the leaders.
func (c *cluster) client() *kafka.Client {
	c.transport.CloseIdleConnections()
	return &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: 10 * time.Second, Transport: c.transport}
}

// partitions returns the partitions of topic, as the cluster reports them now.
func (c *cluster) partitions(t *testing.T, topic string) []kafka.Partition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		md, err := c.client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil {
			return md.Topics[0].Partitions
		}
		if ctx.Err() != nil {
			t.Fatalf("metadata of %s: %v %+v", topic, err, md)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFullISR waits until every partition of topics has all its replicas in
// sync, e.g. after a broker came back.
func (c *cluster) waitFullISR(t *testing.T, timeout time.Duration, topics ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := c.client().Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		cancel()
		if err != nil {
			ok = false
		} else {
			for _, tp := range md.Topics {
				for _, p := range tp.Partitions {
					if len(p.Isr) != len(p.Replicas) || p.Leader.ID < 0 {
						ok = false
					}
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas of %v not all in sync after %v (%v)", topics, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// consume reads every message the topics hold now, from the first offset to
// the last, each partition concurrently.
func (c *cluster) consume(t *testing.T, topics ...string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var parts []kafka.Partition
	for _, tp := range topics {
		parts = append(parts, c.partitions(t, tp)...)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range parts {
		req[p.Topic] = append(req[p.Topic], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	// Leadership may still be moving after a test restarted brokers: ask
	// again (with fresh metadata) until every partition answers.
	var offs *kafka.ListOffsetsResponse
	for {
		var err error
		offs, err = c.client().ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
		if err != nil {
			offs = &kafka.ListOffsetsResponse{}
		}
		for topic, ps := range offs.Topics {
			for _, po := range ps {
				if po.Error != nil && err == nil {
					err = fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
				}
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("list offsets: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var mu sync.Mutex
	var out []kafka.Message
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for topic, ps := range offs.Topics {
		for _, po := range ps {
			if po.LastOffset <= po.FirstOffset {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.brokers, Topic: topic, Partition: po.Partition, MaxWait: 200 * time.Millisecond})
				defer r.Close()
				if err := r.SetOffset(po.FirstOffset); err != nil {
					errs <- err
					return
				}
				for {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						errs <- fmt.Errorf("read %s/%d: %w", topic, po.Partition, err)
						return
					}
					mu.Lock()
					out = append(out, m)
					mu.Unlock()
					if m.Offset >= po.LastOffset-1 {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// built is the gateway binary the tests share, built once per run.
var built = testutil.Binary{Package: "github.com/emma-gateway/emma-gateway/cmd/emma-gateway"}

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

func gatewayBinary(t *testing.T) string {
	t.Helper()
	return built.Path(t)
}

// lockedBuffer collects a subprocess's output for the test to read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gateway is the emma-gateway binary serving on loopback.
type gateway struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	prefix string
	stderr *lockedBuffer
	done   chan error
	http   *http.Client
}

// topicPrefix names a test's topics after the test and the run, so that
// runs against one cluster never read each other's messages.
func topicPrefix(t *testing.T) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("it.%s.%s", strconv.FormatInt(time.Now().UnixMilli(), 36), strings.ToLower(name))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs `emma-gateway serve` against brokers, with its topics
// under prefix (created by the gateway, replication factor 3), extra flags
// and environment. With wantReady it waits for /readyz to answer 200.
func startGateway(t *testing.T, brokers []string, prefix string, wantReady bool, args []string, env ...string) *gateway {
	t.Helper()
	addr := freeAddr(t)
	all := append([]string{"serve",
		"--addr", addr,
		"--kafka-brokers", strings.Join(brokers, ","),
		"--topic-template", prefix + ".{event}",
		"--unrecognized-topic", prefix + ".unrecognized",
		"--deadletter-topic", prefix + ".deadletter",
		"--topic-replication-factor", "3",
		"--topic-partitions", "3",
		"--max-in-flight", "4096",
	}, args...)
	cmd := exec.Command(gatewayBinary(t), all...)
	cmd.Env = append(os.Environ(), append([]string{"EMMA_GATEWAY_TOKENS=" + token}, env...)...)
	g := &gateway{t: t, cmd: cmd, base: "http://" + addr, prefix: prefix, stderr: &lockedBuffer{}, done: make(chan error, 1),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}}
	cmd.Stderr = g.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- cmd.Wait() }()
	t.Cleanup(func() {
		g.stop()
		if dir := os.Getenv(envLogDir); dir != "" {
			name := regexp.MustCompile(`[^a-zA-Z0-9.]+`).ReplaceAllString(prefix, "-") + ".log"
			_ = os.WriteFile(filepath.Join(dir, name), []byte(g.stderr.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("gateway stderr (last 8 KiB):\n%s", tailOf(g.stderr.String(), 8<<10))
		}
		deleteTopics(t, strings.Split(os.Getenv(envBrokers), ","), prefix)
	})
	if wantReady {
		g.waitReady(60 * time.Second)
	}
	return g
}

// deleteTopics deletes the topics a test's gateway made, so that the
// cluster stays small (a broker restarted after SIGKILL recovers every
// partition it holds before it serves).
func deleteTopics(t *testing.T, brokers []string, prefix string) {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Logf("topics of %s not deleted: %v", prefix, err)
		return
	}
	var names []string
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, prefix+".") {
			names = append(names, tp.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	if _, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names}); err != nil {
		t.Logf("topics of %s not deleted: %v", prefix, err)
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30 s).
func (g *gateway) stop() {
	if g.cmd.ProcessState != nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	g.cmd.ProcessState = &os.ProcessState{}
}

func (g *gateway) topic(event string) string { return g.prefix + "." + event }

// readyz returns /readyz's status and body.
func (g *gateway) readyz() (int, string) {
	res, err := g.http.Get(g.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (g *gateway) waitReady(timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := g.readyz()
		if code == 200 {
			return
		}
		select {
		case err := <-g.done:
			g.t.Fatalf("the gateway exited (%v) before it was ready:\n%s", err, g.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the gateway not ready after %v: %d %s", timeout, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// answer is the gateway's answer to one callback.
type answer struct {
	status     int
	retryAfter string
	eventID    string
	err        error
}

func (g *gateway) post(body []byte) answer {
	res, err := g.http.Post(g.base+"/webhooks/emma/"+token, "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	var a struct {
		EventID string `json:"event_id"`
	}
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &a)
	return answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), eventID: a.EventID}
}

// metric returns the value of one unlabelled metric on /metrics.
func (g *gateway) metric(name string) float64 {
	g.t.Helper()
	res, err := g.http.Get(g.base + "/metrics")
	if err != nil {
		g.t.Fatalf("metrics: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				g.t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	g.t.Fatalf("no metric %s on /metrics", name)
	return 0
}

// callback reads testdata/callbacks/name.json.
func callback(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "callbacks", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventNames lists the callbacks in testdata: the 19 event types and unrecognized.
func eventNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "callbacks", "*.json"))
	if err != nil || len(files) != 20 {
		t.Fatalf("callbacks: %v %v", files, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names
}

// header returns the value of m's header key.
func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
