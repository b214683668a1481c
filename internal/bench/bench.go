// Package bench is "emma-gateway bench": a load test of the gateway with
// delivery verification, beside a no-op Echo baseline and a hand-written
// Echo + kafka-go pipeline under the same load. Every target runs in a
// process of its own (the gateway as "serve", configured as serve is by
// gateway.Load; the others as the hidden "bench-target" command), so that
// the CPU time each spends per accepted callback is read from that
// process and not from the load generator.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/internal/cli"
	"github.com/emma-gateway/emma-gateway/internal/emulator"
	"github.com/emma-gateway/emma-gateway/internal/gateway"
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
	targets       []string // gateway, noop, handwritten: measured in this order, rotated each round
	rounds        int
	pid           int    // --url: the gateway's process, for its CPU time and memory
	metricsURL    string // --url: where process_cpu_seconds_total is; empty: {url origin}/metrics
	jsonOut       bool
	verify        bool
	timeout       time.Duration
	cpuProfile    string
	memProfile    string

	version string // of the binary
	// exe is the binary the targets are started from: this one
	// (os.Executable) unless a test says otherwise.
	exe string
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
		targets:       []string{"gateway"},
		rounds:        1,
	}
}

func benchFlags(cfg *benchConfig, output io.Writer) *cli.FlagSet {
	fs := cli.NewFlagSet("bench", cli.EnvPrefix, output)
	fs.StringVar(&cfg.url, "url", cfg.url, "base URL of a running gateway (e.g. http://127.0.0.1:8080); empty starts one in its own process (serve, embedded broker, spool in a temporary directory)")
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
	fs.BoolVar(&cfg.baseline, "baseline", cfg.baseline, "also measure the no-op Echo handler (as --targets gateway,noop)")
	fs.Var((*cli.List)(&cfg.targets), "targets", "what to measure, each in its own process, one after another with the same load: gateway, noop (a no-op Echo handler), handwritten (Echo + validator + kafka-go Writer)")
	fs.IntVar(&cfg.rounds, "rounds", cfg.rounds, "measure every target this many times, alternating, and report the median and range")
	fs.IntVar(&cfg.pid, "pid", cfg.pid, "--url: process id of the gateway, for its CPU time (/proc/PID/stat) and memory")
	fs.StringVar(&cfg.metricsURL, "metrics-url", cfg.metricsURL, "--url without --pid: Prometheus endpoint with process_cpu_seconds_total, scraped before and after each round (default {url origin}/metrics)")
	fs.BoolVar(&cfg.jsonOut, "json", cfg.jsonOut, "print the report as JSON")
	fs.BoolVar(&cfg.verify, "verify", cfg.verify, "read the topics afterwards and report every accepted event missing from Kafka")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "timeout of one request")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", cfg.cpuProfile, "write a CPU profile of the load generator (this process, not the targets) to this file")
	fs.StringVar(&cfg.memProfile, "memprofile", cfg.memProfile, "write an allocation profile of the load generator to this file")
	// Not EMMA_GATEWAY_*: serve's variables configure the gateway bench
	// starts (EMMA_GATEWAY_KAFKA_WRITE_TIMEOUT, ...), so bench's own are
	// kept apart.
	fs.EnvPrefix(cli.EnvPrefix + "BENCH_")
	return fs
}

// Run is "emma-gateway bench": it parses args (and the
// EMMA_GATEWAY_BENCH_* variables), measures, prints the report, and fails
// when an accepted event is missing from Kafka. The gateway it starts is
// configured by serve's EMMA_GATEWAY_* variables (read from env.Getenv to
// resolve its topics; the process inherits them). version is the
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
	for _, t := range rep.Targets {
		if v := t.Verification; v != nil && v.Missing > 0 {
			return fmt.Errorf("%s: %d accepted events are missing from Kafka", t.Target, v.Missing)
		}
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
	if c.rounds < 1 {
		errs = append(errs, fmt.Errorf("--rounds must be at least 1, not %d", c.rounds))
	}
	if len(c.targets) == 0 {
		errs = append(errs, errors.New("--targets: name at least one of gateway, noop, handwritten"))
	}
	for i, t := range c.targets {
		if t != "gateway" && t != "noop" && t != "handwritten" {
			errs = append(errs, fmt.Errorf("--targets: %q is not gateway, noop or handwritten", t))
		} else if slices.Index(c.targets, t) != i {
			errs = append(errs, fmt.Errorf("--targets: %q named twice", t))
		}
	}
	if c.url == "" && (c.pid != 0 || c.metricsURL != "") {
		errs = append(errs, errors.New("--pid and --metrics-url are for a gateway at --url; bench reads the CPU time of the processes it starts itself"))
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
	Machine machine `json:"machine"`
	// LoadAverage is /proc/loadavg (1, 5, 15 minutes) before and after
	// the run: how much else the machine was doing.
	LoadAverage struct {
		Before []float64 `json:"before,omitempty"`
		After  []float64 `json:"after,omitempty"`
	} `json:"load_average"`
	Rounds  int             `json:"rounds"`
	Targets []*targetReport `json:"targets"`
	// LoadGeneratorPeakRSSBytes is this process's (bench's own) peak
	// resident set, not a target's.
	LoadGeneratorPeakRSSBytes int64 `json:"load_generator_peak_rss_bytes,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
}

// targetReport is one target over every round.
type targetReport struct {
	Target string `json:"target"` // gateway, noop or handwritten
	URL    string `json:"url"`
	// PID is the target's process, where bench knows it.
	PID int `json:"pid,omitempty"`
	// CPUSource is where its CPU time was read; CPUError why not.
	CPUSource string         `json:"cpu_source,omitempty"`
	CPUError  string         `json:"cpu_error,omitempty"`
	Rounds    []*benchResult `json:"rounds"`
	Summary   summary        `json:"summary"`
	// Memory is its resident set at the end of the run (and its peak).
	Memory *memory `json:"memory,omitempty"`
	// Verification compares the events answered 2xx (warm-ups included)
	// with what the topics hold; the no-op target has none.
	Verification *verification `json:"verification,omitempty"`

	meter   cpuMeter
	path    string // webhook URL, token included
	brokers []string
	topics  []string
	start   map[string]map[int]int64 // end offsets before the first round
}

// spread is a figure's median and range over the rounds.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// summary is a target's figures over the rounds.
type summary struct {
	Throughput spread `json:"throughput"`
	// CPUPerAcceptedUS is the target process's CPU time (user+system)
	// over the measured window divided by the callbacks it answered 2xx
	// in that window, in microseconds; absent when it could not be read.
	CPUPerAcceptedUS *spread `json:"cpu_us_per_accepted,omitempty"`
	P50              spread  `json:"p50_ms"`
	P90              spread  `json:"p90_ms"`
	P99              spread  `json:"p99_ms"`
	Max              spread  `json:"max_ms"`
	Requests         int64   `json:"requests"`
	Accepted         int64   `json:"accepted"`
	Errors           int64   `json:"errors"`  // transport errors
	Non2xx           int64   `json:"non_2xx"` // answers other than 2xx
}

// benchResult is the measurement of one target in one round.
type benchResult struct {
	Target      string  `json:"target"`
	Round       int     `json:"round"`
	URL         string  `json:"url"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Connections int     `json:"connections"`
	Rate        float64 `json:"rate,omitempty"`
	Seconds     float64 `json:"seconds"`
	Requests    uint64  `json:"requests"`
	// Accepted is the measured requests answered 2xx.
	Accepted int64 `json:"accepted"`
	// Throughput is measured requests per second (any answer).
	Throughput float64 `json:"throughput"`
	// CPUSeconds is the target process's CPU time over the measured
	// window; CPUPerAcceptedUS that over Accepted; Cores that over the
	// window's length.
	CPUSeconds       float64          `json:"cpu_seconds,omitempty"`
	CPUPerAcceptedUS float64          `json:"cpu_us_per_accepted,omitempty"`
	Cores            float64          `json:"cores,omitempty"`
	Latency          latencySummary   `json:"latency_ms"`
	Status           map[string]int64 `json:"status"`
	Errors           map[string]int64 `json:"errors,omitempty"`
	// RSSBytes is the target's resident set, read every 10 s through
	// the measured window and at its end (where its pid is known).
	RSSBytes []int64 `json:"rss_bytes,omitempty"`

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
	// SpoolDrainMS is how long the verification waited for the gateway's
	// spool to empty first; SpoolLeft what it still held when the wait
	// gave up (those events count as missing).
	SpoolDrainMS float64 `json:"spool_drain_ms,omitempty"`
	SpoolLeft    int     `json:"spool_left,omitempty"`
}

// spoolDrainTimeout bounds the wait for a gateway's spool to empty before
// the delivery verification.
const spoolDrainTimeout = 2 * time.Minute

// waitSpoolDrained polls the gateway's /metrics until its
// emma_gateway_spool_records gauge is 0, at most timeout, and returns how
// long it waited and what the spool still held then. A gateway without a
// spool, or whose metrics cannot be read, is not waited for.
func waitSpoolDrained(ctx context.Context, base string, timeout time.Duration) (time.Duration, int) {
	start := time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		n, ok := spoolRecords(ctx, client, strings.TrimSuffix(base, "/")+"/metrics")
		if !ok || n == 0 {
			return time.Since(start), 0
		}
		if time.Since(start) >= timeout {
			return time.Since(start), n
		}
		select {
		case <-ctx.Done():
			return time.Since(start), n
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// spoolRecords reads the emma_gateway_spool_records gauge from a
// Prometheus text page; ok is false when the page or the gauge is missing.
func spoolRecords(ctx context.Context, client *http.Client, metricsURL string) (int, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, false
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "emma_gateway_spool_records "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err == nil
		}
	}
	return 0, false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runBench starts the targets, measures them round after round with the
// same load, verifies delivery, and stops them. A report is returned
// whenever some measurement was made.
func runBench(ctx context.Context, cfg benchConfig, env cli.IO) (rep *benchReport, err error) {
	mix, err := parseEventMix(cfg.events)
	if err != nil {
		return nil, err
	}
	rep = &benchReport{Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version()}, Rounds: cfg.rounds}
	exe := cfg.exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("bench starts its targets from its own binary: %w", err)
		}
	}
	names := slices.Clone(cfg.targets)
	if cfg.baseline && !slices.Contains(names, "noop") {
		names = append(names, "noop")
	}
	var children []*child
	var cleanups []func()
	defer func() {
		for _, c := range children {
			if serr := c.stop(); serr != nil && err == nil {
				err = serr
			}
		}
		for _, f := range cleanups {
			f()
		}
	}()
	metricsClient := &http.Client{Timeout: 5 * time.Second}
	for _, name := range names {
		t := &targetReport{Target: name}
		switch {
		case name == "gateway" && cfg.url != "":
			t.URL, t.brokers, t.PID = strings.TrimSuffix(cfg.url, "/"), cfg.brokers, cfg.pid
			kcfg := sinks.DefaultConfig()
			kcfg.TopicTemplate = cfg.topicTemplate
			t.topics = gatewayTopics(kcfg)
			t.path = webhookPath(t.URL, cfg.token)
			if cfg.pid != 0 {
				t.meter = procMeter{cfg.pid}
			} else {
				mu := cfg.metricsURL
				if mu == "" {
					mu = defaultMetricsURL(cfg.url)
				}
				t.meter = promMeter{url: mu, client: metricsClient}
			}
		case name == "gateway":
			c, gcfg, token, cleanup, err := startGatewayProcess(ctx, exe, env.Getenv)
			if cleanup != nil {
				cleanups = append(cleanups, cleanup)
			}
			if err != nil {
				return nil, err
			}
			children = append(children, c)
			t.URL, t.brokers, t.PID = c.url, c.brokers, c.pid()
			t.topics = gatewayTopics(gcfg.Kafka)
			t.path = webhookPath(t.URL, token)
			t.meter = procMeter{t.PID}
		default:
			c, err := startChild(ctx, name, exe, []string{TargetCommand, name}, childEnv(nil), targetLines)
			if err != nil {
				return nil, err
			}
			children = append(children, c)
			t.URL, t.brokers, t.PID = c.url, c.brokers, c.pid()
			// The same path shape as the gateway's, a token segment included.
			t.path = t.URL + "/webhooks/emma/baseline"
			t.meter = procMeter{t.PID}
			if name == "handwritten" {
				// It writes each event to emma.<event_name>.
				for _, n := range mix.names {
					t.topics = append(t.topics, "emma."+n)
				}
			}
		}
		if t.meter != nil {
			t.CPUSource = t.meter.Source()
		}
		if !cfg.verify || len(t.topics) == 0 {
			t.topics = nil
		} else if t.start, err = endOffsets(ctx, t.brokers, t.topics); err != nil {
			return nil, fmt.Errorf("%s: kafka offsets before the run: %w", name, err)
		}
		rep.Targets = append(rep.Targets, t)
	}

	rep.LoadAverage.Before = loadAverage()
	for round := range cfg.rounds {
		// Rotated, so that no target always follows the same one.
		for i := range rep.Targets {
			t := rep.Targets[(i+round)%len(rep.Targets)]
			res, err := runLoad(ctx, cfg, mix, t, round+1)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", t.Target, round+1, err)
			}
			t.Rounds = append(t.Rounds, res)
		}
	}
	rep.LoadAverage.After = loadAverage()

	for _, t := range rep.Targets {
		t.summarize()
		if t.PID != 0 {
			if m, err := readMemory(t.PID); err == nil {
				t.Memory = &m
			}
		}
		if t.topics == nil {
			continue
		}
		var accepted []string
		for _, r := range t.Rounds {
			accepted = append(accepted, r.accepted...)
		}
		// An event answered 200 from the gateway's spool reaches Kafka
		// when the spool replays it, after the answer: read the topics
		// once the spool is empty, or what it still holds counts missing.
		drained, left := waitSpoolDrained(ctx, t.URL, spoolDrainTimeout)
		if t.Verification, err = verify(ctx, t.brokers, t.topics, t.start, accepted); err != nil {
			return rep, fmt.Errorf("%s: delivery verification: %w", t.Target, err)
		}
		t.Verification.Topics = t.topics
		t.Verification.SpoolDrainMS, t.Verification.SpoolLeft = ms(drained), left
	}
	rep.LoadGeneratorPeakRSSBytes = peakRSS()
	return rep, nil
}

func (t *targetReport) summarize() {
	var thr, cpu, p50, p90, p99, mx []float64
	s := &t.Summary
	for _, r := range t.Rounds {
		thr = append(thr, r.Throughput)
		p50, p90, p99, mx = append(p50, r.Latency.P50), append(p90, r.Latency.P90), append(p99, r.Latency.P99), append(mx, r.Latency.Max)
		if r.CPUPerAcceptedUS > 0 {
			cpu = append(cpu, r.CPUPerAcceptedUS)
		}
		s.Requests += int64(r.Requests)
		s.Accepted += r.Accepted
		for _, n := range r.Errors {
			s.Errors += n
		}
		s.Non2xx += int64(r.Requests) - r.Accepted
	}
	s.Throughput, s.P50, s.P90, s.P99, s.Max = spreadOf(thr), spreadOf(p50), spreadOf(p90), spreadOf(p99), spreadOf(mx)
	if len(cpu) > 0 {
		c := spreadOf(cpu)
		s.CPUPerAcceptedUS = &c
	}
}

// gatewayTopics are the topics the gateway writes accepted events to:
// every event type's (routes file included) and the unrecognized one.
func gatewayTopics(kcfg sinks.Config) []string {
	var topics []string
	for _, t := range append(kcfg.Topics(), kcfg.UnrecognizedTopic) {
		if t != kcfg.DeadLetterTopic && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	return topics
}

func webhookPath(base, token string) string {
	path := strings.TrimSuffix(base, "/") + "/webhooks/emma"
	if token != "" {
		path += "/" + url.PathEscape(token)
	}
	return path
}

// startGatewayProcess starts "exe serve", configured as serve is (serve's
// defaults and EMMA_GATEWAY_* variables, the routes file included) but on
// ports the system chooses, with a token (so that authentication runs),
// the spool armed in a temporary directory, and the tracing SDK as OTEL_*
// say (by default exporting nothing). The configuration is resolved here
// with the same arguments (gateway.Load), for the topics to verify, and
// every variable that resolution read from getenv is handed to the
// process as read. cleanup removes the temporary spool.
func startGatewayProcess(ctx context.Context, exe string, getenv func(string) string) (c *child, cfg gateway.Config, token string, cleanup func(), err error) {
	args := []string{"--addr", "127.0.0.1:0", "--embedded-kafka-addr", "127.0.0.1:0"}
	read := map[string]string{}
	// A token unless the environment gives some: set before the
	// configuration is resolved, which refuses a gateway without one
	// unless its broker is the embedded one. In the environment, not on
	// the command line, where ps shows it.
	generated := ""
	if getenv(cli.EnvPrefix+"TOKENS") == "" && getenv(cli.EnvPrefix+"TOKENS_FILE") == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		generated = hex.EncodeToString(b)
	}
	lookup := func(k string) string {
		v := getenv(k)
		if k == cli.EnvPrefix+"TOKENS" && generated != "" {
			v = generated
		}
		read[k] = v
		return v
	}
	if cfg, err = gateway.Load(args, lookup); err != nil {
		return nil, cfg, "", nil, fmt.Errorf("gateway settings: %w", err)
	}
	if len(cfg.Receiver.Tokens) == 0 {
		return nil, cfg, "", nil, errors.New("gateway settings: bench needs a webhook token in EMMA_GATEWAY_TOKENS (a tokens file is not read by bench)")
	}
	token = cfg.Receiver.Tokens[0]
	if cfg.Kafka.Spool.Dir == "" {
		tmp, err := os.MkdirTemp("", "emma-gateway-bench-spool-")
		if err != nil {
			return nil, cfg, "", nil, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
		args = append(args, "--spool-dir", tmp)
	}
	// Info, in JSON, is where serve names its address and brokers.
	args = append(append([]string{"serve"}, args...), "--log-level", "info", "--log-format", "json")
	c, err = startChild(ctx, "gateway", exe, args, childEnv(read), gatewayLines)
	return c, cfg, token, cleanup, err
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
// The target's CPU time is read when the warm-up ends and when the last
// answer has come, and its resident set every 10 s in between.
func runLoad(ctx context.Context, cfg benchConfig, mix eventMix, t *targetReport, round int) (*benchResult, error) {
	path, collectIDs := t.path, t.topics != nil
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
	// In Emma's zone, as the emulator writes its times: loaded once here,
	// not once per callback.
	emmaClock, err := time.LoadLocation(events.EmmaTimezone)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", events.EmmaTimezone, err)
	}
	at := time.Now().Truncate(time.Second).In(emmaClock)
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
		if res.StatusCode/100 == 2 && collectIDs {
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

	// The target's CPU time at the start of the measured window, and its
	// resident set through it.
	var (
		cpuStart   time.Duration
		cpuErr     error
		rssSamples []int64
		sampled    = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		select {
		case <-time.After(time.Until(measureFrom)):
		case <-lctx.Done():
			cpuErr = errors.New("the run ended before its warm-up did")
			return
		}
		if t.meter != nil {
			cpuStart, cpuErr = t.meter.CPU(lctx)
		}
		if t.PID == 0 {
			return
		}
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if m, err := readMemory(t.PID); err == nil {
					rssSamples = append(rssSamples, m.RSSBytes)
				}
			case <-lctx.Done():
				return
			}
		}
	}()

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
	cancel()
	<-sampled
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cpuEnd time.Duration
	if t.meter != nil && cpuErr == nil {
		cpuEnd, cpuErr = t.meter.CPU(ctx)
	}

	res := &benchResult{
		Target: t.Target, Round: round, URL: t.URL, Mode: "closed", Connections: cfg.connections,
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
	for s, c := range res.Status {
		if s[0] == '2' {
			res.Accepted += c
		}
	}
	if res.Seconds > 0 {
		res.Throughput = float64(res.Requests) / res.Seconds
	}
	switch {
	case t.meter == nil:
	case cpuErr != nil:
		t.CPUError = cpuErr.Error()
	case res.Accepted > 0:
		cpu := cpuEnd - cpuStart
		res.CPUSeconds = cpu.Seconds()
		res.CPUPerAcceptedUS = float64(cpu.Microseconds()) / float64(res.Accepted)
		if res.Seconds > 0 {
			res.Cores = res.CPUSeconds / res.Seconds
		}
	}
	if t.PID != 0 {
		if m, err := readMemory(t.PID); err == nil {
			rssSamples = append(rssSamples, m.RSSBytes)
		}
		res.RSSBytes = rssSamples
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
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s; load average before %s, after %s\n\n", r.Machine.CPUs, r.Machine.CPUModel,
		r.Machine.GoVersion, loads(r.LoadAverage.Before), loads(r.LoadAverage.After))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\ttarget\tmode\tconns\treq/s\tCPU µs/2xx\tcores\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\trequests\tanswers\terrors\t")
	for round := 1; round <= r.Rounds; round++ {
		for _, t := range r.Targets {
			for _, res := range t.Rounds {
				if res.Round != round {
					continue
				}
				mode := res.Mode
				if res.Rate > 0 {
					mode = fmt.Sprintf("open %.0f/s", res.Rate)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t\n",
					res.Round, res.Target, mode, res.Connections, res.Throughput, orDash(res.CPUPerAcceptedUS, "%.1f"),
					orDash(res.Cores, "%.2f"), res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.P999,
					res.Latency.Max, res.Requests, counts(res.Status), counts(res.Errors))
			}
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nover %d round(s): median (min-max)\n", r.Rounds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tCPU µs per accepted\tp50 ms\tp99 ms\tmax ms\terrors\tnon-2xx\tlost\tRSS MiB (peak)\t")
	var noopCPU float64
	for _, t := range r.Targets {
		if t.Target == "noop" && t.Summary.CPUPerAcceptedUS != nil {
			noopCPU = t.Summary.CPUPerAcceptedUS.Median
		}
	}
	for _, t := range r.Targets {
		s := t.Summary
		cpu := "-"
		if s.CPUPerAcceptedUS != nil {
			cpu = s.CPUPerAcceptedUS.format("%.1f")
			if noopCPU > 0 && t.Target != "noop" {
				cpu += fmt.Sprintf(" = %.1f× noop", s.CPUPerAcceptedUS.Median/noopCPU)
			}
		}
		lost := "-"
		if v := t.Verification; v != nil {
			lost = fmt.Sprintf("%d of %d", v.Missing, v.Accepted)
		}
		mem := "-"
		if t.Memory != nil {
			mem = fmt.Sprintf("%.0f (%.0f)", float64(t.Memory.RSSBytes)/(1<<20), float64(t.Memory.PeakBytes)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t\n", t.Target, s.Throughput.format("%.0f"), cpu,
			s.P50.format("%.2f"), s.P99.format("%.2f"), s.Max.format("%.1f"), s.Errors, s.Non2xx, lost, mem)
	}
	tw.Flush()
	for _, t := range r.Targets {
		if t.CPUError != "" {
			fmt.Fprintf(w, "%s: CPU time not read from %s: %s\n", t.Target, t.CPUSource, t.CPUError)
		}
		if v := t.Verification; v != nil {
			fmt.Fprintf(w, "%s delivery: %d accepted, %d found in Kafka, %d missing\n", t.Target, v.Accepted, v.Found, v.Missing)
			if v.SpoolLeft > 0 {
				fmt.Fprintf(w, "  the gateway's spool still held %d records after %.0f ms: they count as missing\n", v.SpoolLeft, v.SpoolDrainMS)
			} else if v.SpoolDrainMS >= 500 {
				fmt.Fprintf(w, "  (read after %.1f s, once the gateway's spool had replayed what it held)\n", v.SpoolDrainMS/1000)
			}
			for i, id := range v.Lost {
				if i == 20 {
					fmt.Fprintf(w, "  ... and %d more (all of them with --json)\n", len(v.Lost)-20)
					break
				}
				fmt.Fprintf(w, "  missing: %s\n", id)
			}
		}
	}
}

func (s spread) format(f string) string {
	if s.Min == s.Max {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ("+f+"-"+f+")", s.Median, s.Min, s.Max)
}

func orDash(v float64, f string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(f, v)
}

func loads(l []float64) string {
	if len(l) < 3 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
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
