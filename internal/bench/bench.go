// Package bench is "emma-gateway bench": a load test of the gateway with
// delivery verification, beside a no-op Echo baseline under the same load.
// Without --url it runs the gateway in this process, configured as serve
// is (gateway.Load).
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
	"github.com/emma-gateway/emma-gateway/sinks"
)

// benchConfig is everything bench reads from flags and the environment.
type benchConfig struct {
	url           string // empty: start a gateway in this process
	brokers       []string
	token         string
	topicTemplate string
	connections   int
	rate          float64 // requests per second; 0: closed loop
	duration      time.Duration
	requests      int64 // 0: until duration
	warmup        time.Duration
	getRatio      float64
	events        string // name=weight,...; empty: defaultEventMix
	account       int64
	baseline      bool
	jsonOut       bool
	verify        bool
	timeout       time.Duration
	cpuProfile    string
	memProfile    string

	version string // of the binary, for the in-process gateway
}

// defaultEventMix weighs the event types as an account's traffic does:
// mostly opens and clicks after a mailing, some of everything else.
const defaultEventMix = "message_open=40,message_click=20,member_optout=3,message_share=2,message_share_click=2,message_forward=2," +
	"mailing_start=1,mailing_finish=1,member_signup=3,import_finish=1,member_update=4,member_delete=1,member_add_to_group=4," +
	"member_remove_from_group=2,group_create=1,group_delete=1,group_update=1,member_status_update=3,member_add=8"

func defaultBenchConfig() benchConfig {
	return benchConfig{
		topicTemplate: sinks.DefaultConfig().TopicTemplate,
		connections:   64,
		duration:      10 * time.Second,
		warmup:        time.Second,
		getRatio:      0.1,
		account:       emulator.DefaultConfig().AccountID,
		verify:        true,
		timeout:       10 * time.Second,
	}
}

func benchFlags(cfg *benchConfig, output io.Writer) *cli.FlagSet {
	fs := cli.NewFlagSet("bench", cli.EnvPrefix, output)
	fs.StringVar(&cfg.url, "url", cfg.url, "base URL of a running gateway (e.g. http://127.0.0.1:8080); empty starts one in this process with an embedded broker")
	fs.Var((*cli.List)(&cfg.brokers), "brokers", "Kafka brokers of the gateway at --url, for delivery verification")
	fs.Var((*cli.Secret)(&cfg.token), "token", "webhook token of the gateway at --url")
	fs.StringVar(&cfg.topicTemplate, "topic-template", cfg.topicTemplate, "topic template of the gateway at --url")
	fs.IntVar(&cfg.connections, "connections", cfg.connections, "concurrent clients (closed loop) or most requests in flight (open loop)")
	fs.Float64Var(&cfg.rate, "rate", cfg.rate, "open loop: requests per second, latency measured from each request's intended send time (0: closed loop)")
	fs.DurationVar(&cfg.duration, "duration", cfg.duration, "how long to send, after the warm-up")
	fs.Int64Var(&cfg.requests, "requests", cfg.requests, "stop after this many measured requests (0: after --duration)")
	fs.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "load sent before measuring (verified, not measured)")
	fs.Float64Var(&cfg.getRatio, "get-ratio", cfg.getRatio, "fraction of callbacks sent by GET (the rest by POST)")
	fs.StringVar(&cfg.events, "events", cfg.events, "event mix as name=weight,... (default: every event type, mostly opens and clicks)")
	fs.Int64Var(&cfg.account, "account", cfg.account, "Emma account id of the callbacks")
	fs.BoolVar(&cfg.baseline, "baseline", cfg.baseline, "also measure a no-op Echo handler with the same load and print the ratio")
	fs.BoolVar(&cfg.jsonOut, "json", cfg.jsonOut, "print the report as JSON")
	fs.BoolVar(&cfg.verify, "verify", cfg.verify, "read the topics afterwards and report every accepted event missing from Kafka")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "timeout of one request")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", cfg.cpuProfile, "write a CPU profile of this process (client and in-process gateway) to this file")
	fs.StringVar(&cfg.memProfile, "memprofile", cfg.memProfile, "write an allocation profile of this process to this file")
	// Not EMMA_GATEWAY_*: serve's variables configure the in-process
	// gateway (EMMA_GATEWAY_KAFKA_WRITE_TIMEOUT, ...), so bench's own are
	// kept apart.
	fs.EnvPrefix(cli.EnvPrefix + "BENCH_")
	return fs
}

// Run is "emma-gateway bench": it parses args (and the
// EMMA_GATEWAY_BENCH_* variables), measures, prints the report, and fails
// when an accepted event is missing from Kafka. The in-process gateway
// reads serve's EMMA_GATEWAY_* variables from env.Getenv. version is the
// binary's.
func Run(ctx context.Context, args []string, env cli.IO, version string) error {
	cfg := defaultBenchConfig()
	cfg.version = version
	if err := benchFlags(&cfg, env.Stderr).ParseNoArgs(args, env.Getenv); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return cli.Usage(err)
	}
	stdout := env.Stdout
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := runBench(ctx, cfg, env)
	if cfg.memProfile != "" {
		if f, ferr := os.Create(cfg.memProfile); ferr == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if rep != nil {
		if cfg.jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			rep.print(stdout)
		}
	}
	if err != nil {
		return err
	}
	if v := rep.Gateway.Verification; v != nil && v.Missing > 0 {
		return fmt.Errorf("%d accepted events are missing from Kafka", v.Missing)
	}
	return nil
}

func (c benchConfig) validate() error {
	var errs []error
	if c.connections < 1 {
		errs = append(errs, fmt.Errorf("--connections must be at least 1, not %d", c.connections))
	}
	if c.rate < 0 || c.getRatio < 0 || c.getRatio > 1 {
		errs = append(errs, errors.New("--rate must be >= 0 and --get-ratio within 0..1"))
	}
	if c.duration <= 0 && c.requests <= 0 {
		errs = append(errs, errors.New("give a --duration or a number of --requests"))
	}
	if c.url != "" {
		// Checked here, once: a bad URL would otherwise fail every
		// request (or panic building the first one).
		if u, err := url.Parse(c.url); err != nil {
			errs = append(errs, fmt.Errorf("--url %q is not a URL: %w", c.url, err))
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--url %q: want an absolute http:// or https:// URL such as http://127.0.0.1:8080", c.url))
		}
	}
	if c.url != "" && c.verify && len(c.brokers) == 0 {
		errs = append(errs, errors.New("--url needs --brokers to verify delivery (or --verify=false)"))
	}
	if _, err := parseEventMix(c.events); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// eventMix draws event names by weight.
type eventMix struct {
	names []string
	cum   []int // cumulative weights
}

func parseEventMix(s string) (eventMix, error) {
	if s == "" {
		s = defaultEventMix
	}
	var m eventMix
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, w, found := strings.Cut(strings.TrimSpace(part), "=")
		weight := 1
		if found {
			var err error
			if weight, err = strconv.Atoi(w); err != nil || weight < 0 {
				return m, fmt.Errorf("--events: weight of %q is not a non-negative integer", name)
			}
		}
		if _, ok := events.Lookup(name); !ok {
			return m, fmt.Errorf("--events: %q is not an event type", name)
		}
		if weight == 0 {
			continue
		}
		total += weight
		m.names = append(m.names, name)
		m.cum = append(m.cum, total)
	}
	if total == 0 {
		return m, errors.New("--events: no event has a weight")
	}
	return m, nil
}

func (m eventMix) pick(r *mrand.Rand) string {
	x := r.IntN(m.cum[len(m.cum)-1])
	i := sort.SearchInts(m.cum, x+1)
	return m.names[i]
}

// benchReport is bench's output.
type benchReport struct {
	Machine  machine      `json:"machine"`
	Gateway  *benchResult `json:"gateway"`
	Baseline *benchResult `json:"baseline,omitempty"`
	// Ratio is the gateway's throughput over the baseline's.
	Ratio float64 `json:"ratio,omitempty"`
	// PeakRSSBytes is this process's peak resident set: with an
	// in-process gateway it includes the load generator and the embedded
	// broker, which keeps every message in memory.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
}

// benchResult is the measurement of one target.
type benchResult struct {
	Target      string  `json:"target"` // "gateway" or "baseline"
	URL         string  `json:"url"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Connections int     `json:"connections"`
	Rate        float64 `json:"rate,omitempty"`
	Seconds     float64 `json:"seconds"`
	Requests    uint64  `json:"requests"`
	// Throughput is measured requests per second (any answer).
	Throughput float64          `json:"throughput"`
	Latency    latencySummary   `json:"latency_ms"`
	Status     map[string]int64 `json:"status"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	// Verification compares the events answered 2xx (warm-up included)
	// with what the topics hold.
	Verification *verification `json:"verification,omitempty"`

	accepted []string // event ids answered 2xx, warm-up included
}

type latencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type verification struct {
	Accepted int      `json:"accepted"`
	Found    int      `json:"found"`
	Missing  int      `json:"missing"`
	Lost     []string `json:"missing_event_ids,omitempty"` // all of them
	// Topics are those read: the gateway's, routes file included.
	Topics []string `json:"topics"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runBench measures the baseline (if asked) and the gateway, and verifies
// delivery. A report is returned whenever some measurement was made.
func runBench(ctx context.Context, cfg benchConfig, env cli.IO) (*benchReport, error) {
	mix, err := parseEventMix(cfg.events)
	if err != nil {
		return nil, err
	}
	rep := &benchReport{Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version()}}
	if cfg.baseline {
		addr, stop, err := startBaseline()
		if err != nil {
			return nil, err
		}
		// The same path shape as the gateway's, a token segment included.
		rep.Baseline, err = runLoad(ctx, cfg, mix, "http://"+addr+"/webhooks/emma/baseline", "http://"+addr, "baseline")
		stop()
		if err != nil {
			return nil, err
		}
	}
	target, brokers, token := cfg.url, cfg.brokers, cfg.token
	kcfg := sinks.DefaultConfig()
	kcfg.TopicTemplate = cfg.topicTemplate
	if target == "" {
		g, stop, err := startBenchGateway(ctx, cfg.version, env.Getenv, env.Stderr)
		if err != nil {
			return nil, err
		}
		defer stop()
		target, token, kcfg = g.URL(), g.Config().Receiver.Tokens[0], g.Config().Kafka
		brokers = kcfg.Brokers
	}
	var topics []string
	for _, t := range append(kcfg.Topics(), kcfg.UnrecognizedTopic) {
		if t != kcfg.DeadLetterTopic && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	var start map[string]map[int]int64
	if cfg.verify {
		if start, err = endOffsets(ctx, brokers, topics); err != nil {
			return nil, fmt.Errorf("kafka offsets before the run: %w", err)
		}
	}
	path := strings.TrimSuffix(target, "/") + "/webhooks/emma"
	if token != "" {
		path += "/" + url.PathEscape(token)
	}
	rep.Gateway, err = runLoad(ctx, cfg, mix, path, target, "gateway")
	if err != nil {
		return nil, err
	}
	if rep.Baseline != nil && rep.Baseline.Throughput > 0 {
		rep.Ratio = rep.Gateway.Throughput / rep.Baseline.Throughput
	}
	if cfg.verify {
		if rep.Gateway.Verification, err = verify(ctx, brokers, topics, start, rep.Gateway.accepted); err != nil {
			return rep, fmt.Errorf("delivery verification: %w", err)
		}
		rep.Gateway.Verification.Topics = topics
	}
	rep.PeakRSSBytes = peakRSS()
	return rep, nil
}

// startBenchGateway starts the full gateway in this process, configured
// as serve is (gateway.Load: serve's defaults and EMMA_GATEWAY_* variables,
// the routes file included) but on ports the system chooses, with a token,
// the spool armed in a temporary directory, and the tracing SDK (exporting
// as OTEL_* say: by default not at all). stop shuts it down and removes the
// temporary spool.
func startBenchGateway(ctx context.Context, version string, getenv func(string) string, stderr io.Writer) (g *gateway.Gateway, stop func(), err error) {
	cfg, err := gateway.Load([]string{"--addr", "127.0.0.1:0", "--embedded-kafka-addr", "127.0.0.1:0"}, getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway settings: %w", err)
	}
	cfg.Version = version
	if len(cfg.Receiver.Tokens) == 0 {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.Receiver.Tokens = []string{hex.EncodeToString(b)}
	}
	tmp := ""
	if cfg.Kafka.Spool.Dir == "" {
		if tmp, err = os.MkdirTemp("", "emma-gateway-bench-spool-"); err != nil {
			return nil, nil, err
		}
		cfg.Kafka.Spool.Dir = tmp
	}
	tp, err := gateway.TracerProvider(ctx, version, getenv)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	set := telemetry.Settings{Logger: log, TracerProvider: tp, Registerer: telemetry.NewRegistry()}
	stop = func() {
		if g != nil {
			g.Stop()
		}
		_ = tp.Shutdown(context.Background())
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	if g, err = gateway.Start(ctx, cfg, set); err != nil {
		stop()
		return nil, nil, err
	}
	return g, stop, nil
}

// startBaseline serves the same routes as the gateway with a handler that
// reads the request and answers a fixed 200: what Echo alone costs.
func startBaseline() (addr string, stop func(), err error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	answer := []byte(`{"status":"accepted","event_id":"","event":"","recognized":true}`)
	h := func(c echo.Context) error {
		_, _ = io.Copy(io.Discard, c.Request().Body)
		return c.JSONBlob(http.StatusOK, answer)
	}
	for _, p := range []string{"/webhooks/emma", "/webhooks/emma/:token"} {
		e.GET(p, h)
		e.POST(p, h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// worker is one load-generating client's tally, merged at the end.
type worker struct {
	hist     histogram
	status   map[int]int64
	errors   map[string]int64
	accepted []string // event ids answered 2xx
}

// runLoad sends callbacks to path until the duration or request count is
// reached. Closed loop: cfg.connections clients each send their next
// request when the last is answered. Open loop: requests are due at a fixed
// rate and latency counts from when each was due, so that a stalled server
// shows as the delays it causes instead of as fewer, faster requests.
func runLoad(ctx context.Context, cfg benchConfig, mix eventMix, path, shownURL, target string) (*benchResult, error) {
	transport := &http.Transport{
		MaxIdleConns:        cfg.connections,
		MaxIdleConnsPerHost: cfg.connections,
		MaxConnsPerHost:     cfg.connections,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.timeout}

	var seq atomic.Int64
	at := time.Now().UTC().Truncate(time.Second)
	begin := time.Now()
	measureFrom := begin.Add(cfg.warmup)
	deadline := measureFrom.Add(cfg.duration)
	if cfg.duration <= 0 {
		deadline = begin.Add(100 * 365 * 24 * time.Hour)
	}
	var measured atomic.Int64
	lctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	// next claims the next request; false once the run is over.
	next := func(now time.Time) bool {
		if lctx.Err() != nil {
			return false
		}
		if cfg.requests > 0 && now.After(measureFrom) && measured.Add(1) > cfg.requests {
			cancel()
			return false
		}
		return true
	}
	// send sends one callback and tallies it against the time it was due
	// (open loop), or the time it was ready to go (closed loop: zero due).
	send := func(w *worker, r *mrand.Rand, due time.Time) {
		n := seq.Add(1)
		name := mix.pick(r)
		payload, _ := json.Marshal(emulator.Payload(name, cfg.account, n, at, nil))
		var req *http.Request
		var err error
		if r.Float64() < cfg.getRatio {
			req, err = http.NewRequest(http.MethodGet, path+"?payload="+url.QueryEscape(string(payload)), nil)
		} else if req, err = http.NewRequest(http.MethodPost, path, bytes.NewReader(payload)); err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if err != nil {
			// validate rules this out; never panic on it.
			w.errors["bad request: "+err.Error()]++
			return
		}
		if due.IsZero() {
			due = time.Now()
		}
		res, err := client.Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		end := time.Now()
		record := !due.Before(measureFrom)
		if err != nil {
			if ctx.Err() == nil && record {
				w.errors[errorClass(err)]++
			}
			return
		}
		if res.StatusCode/100 == 2 && target == "gateway" {
			var a struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal(body, &a) == nil && a.EventID != "" {
				w.accepted = append(w.accepted, a.EventID)
			}
		}
		if record {
			w.status[res.StatusCode]++
			w.hist.Record(end.Sub(due))
		}
	}

	workers := make([]*worker, cfg.connections)
	var wg sync.WaitGroup
	var due chan time.Time
	if cfg.rate > 0 {
		due = make(chan time.Time, 1<<16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(due)
			interval := time.Duration(float64(time.Second) / cfg.rate)
			for i := int64(0); ; i++ {
				t := begin.Add(time.Duration(i) * interval)
				if d := time.Until(t); d > 0 {
					select {
					case <-time.After(d):
					case <-lctx.Done():
						return
					}
				}
				if !next(t) {
					return
				}
				select {
				case due <- t:
				case <-lctx.Done():
					return
				}
			}
		}()
	}
	for i := range workers {
		w := &worker{status: map[int]int64{}, errors: map[string]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(i), uint64(begin.UnixNano())))
			if due != nil {
				for t := range due {
					send(w, r, t)
				}
				return
			}
			for next(time.Now()) {
				send(w, r, time.Time{})
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &benchResult{
		Target: target, URL: shownURL, Mode: "closed", Connections: cfg.connections,
		Seconds: end.Sub(measureFrom).Seconds(),
		Status:  map[string]int64{}, Errors: map[string]int64{},
	}
	if cfg.rate > 0 {
		res.Mode, res.Rate = "open", cfg.rate
	}
	var h histogram
	for _, w := range workers {
		h.Merge(&w.hist)
		for s, c := range w.status {
			res.Status[strconv.Itoa(s)] += c
		}
		for e, c := range w.errors {
			res.Errors[e] += c
		}
		res.accepted = append(res.accepted, w.accepted...)
	}
	res.Requests = h.Count()
	if res.Seconds > 0 {
		res.Throughput = float64(res.Requests) / res.Seconds
	}
	res.Latency = latencySummary{
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
	return res, nil
}

// errorClass names a transport error without its addresses.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return "other"
}

// endOffsets returns the end offset of every partition of topics (a topic
// that does not exist yet has none).
func endOffsets(ctx context.Context, brokers []string, topics []string) (map[string]map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue // not created yet: everything on it is new
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	out := map[string]map[int]int64{}
	if len(req) == 0 {
		return out, nil
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	for topic, ps := range offs.Topics {
		out[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[topic][p.Partition] = p.LastOffset
		}
	}
	return out, nil
}

// verify reads what the topics gained since start and reports the
// accepted event ids that none of them holds.
func verify(ctx context.Context, brokers, topics []string, start map[string]map[int]int64, accepted []string) (*verification, error) {
	end, err := endOffsets(ctx, brokers, topics)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		seen = make(map[string]struct{}, len(accepted))
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16) // partitions read at once
	for topic, parts := range end {
		for p, last := range parts {
			first := start[topic][p]
			if last <= first {
				continue
			}
			g.Go(func() error {
				ids, err := readIDs(gctx, brokers, topic, p, first, last)
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids {
					seen[id] = struct{}{}
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var lost []string
	for _, id := range accepted {
		if _, ok := seen[id]; !ok {
			lost = append(lost, id)
		}
	}
	return &verification{Accepted: len(accepted), Found: len(accepted) - len(lost), Missing: len(lost), Lost: lost}, nil
}

// readIDs returns the event id (the ce_id header, else the value's
// event_id) of each message of topic/partition in [first, last).
func readIDs(ctx context.Context, brokers []string, topic string, partition int, first, last int64) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MaxWait: 100 * time.Millisecond, MaxBytes: 16 << 20})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, err
	}
	ids := make([]string, 0, last-first)
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return ids, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		id := ""
		for _, h := range m.Headers {
			if h.Key == kafkaevents.HeaderID {
				id = string(h.Value)
			}
		}
		if id == "" {
			var ev struct {
				ID string `json:"event_id"`
				CE string `json:"id"` // structured CloudEvents
			}
			_ = json.Unmarshal(m.Value, &ev)
			id = ev.ID + ev.CE
		}
		ids = append(ids, id)
		if m.Offset+1 >= last {
			return ids, nil
		}
	}
}

// peakRSS is this process's peak resident set size, 0 where getrusage
// does not say.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmode\tconns\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\trequests\tanswers\terrors\t")
	for _, res := range []*benchResult{r.Baseline, r.Gateway} {
		if res == nil {
			continue
		}
		mode := res.Mode
		if res.Rate > 0 {
			mode = fmt.Sprintf("open %.0f/s", res.Rate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t\n",
			res.Target, mode, res.Connections, res.Throughput, res.Latency.P50, res.Latency.P90,
			res.Latency.P99, res.Latency.P999, res.Latency.Max, res.Requests, counts(res.Status), counts(res.Errors))
	}
	tw.Flush()
	if r.Ratio > 0 {
		fmt.Fprintf(w, "\ngateway/baseline throughput: %.0f%%\n", 100*r.Ratio)
	}
	if v := r.Gateway.Verification; v != nil {
		fmt.Fprintf(w, "delivery: %d accepted, %d found in Kafka, %d missing\n", v.Accepted, v.Found, v.Missing)
		for i, id := range v.Lost {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more (all of them with --json)\n", len(v.Lost)-20)
				break
			}
			fmt.Fprintf(w, "  missing: %s\n", id)
		}
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "peak RSS of this process: %.0f MiB\n", float64(r.PeakRSSBytes)/(1<<20))
	}
}

// counts prints a tally as key:count,... in key order; "-" when empty.
func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", k, m[k])
	}
	return b.String()
}
