package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestParseProcStatCountsFieldsAfterTheCommandName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		user, sys  uint64
		wantErr    bool
	}{
		{"plain", "4242 (emma-gateway) S 1 4242 4242 0 -1 4194560 1803 0 0 0 731 95 0 0 20 0 9 0 123456 1300000000 9000 18446744073709551615\n", 731, 95, false},
		// A command name may hold spaces and parentheses.
		{"odd name", "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 12 3 0 0 20 0 1 0 5 100 10 0\n", 12, 3, false},
		{"truncated", "77 (x) R 1 77 77 0 -1 0 0 0 0 0 12", 0, 0, true},
		{"no name", "77 x R 1", 0, 0, true},
		{"not a number", "77 (x) R 1 77 77 0 -1 0 0 0 0 0 twelve 3 0", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, s, err := parseProcStat([]byte(tc.line))
			if (err != nil) != tc.wantErr || u != tc.user || s != tc.sys {
				t.Fatalf("got %d, %d, %v; want %d, %d, error %v", u, s, err, tc.user, tc.sys, tc.wantErr)
			}
		})
	}
}

// TestProcMeterReadsThisProcess: the CPU time read from /proc grows by
// what getrusage, asked independently, says this process used meanwhile
// (within the clock ticks of rounding); no wall-clock timing.
func TestProcMeterReadsThisProcess(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	m := procMeter{os.Getpid()}
	before, err := m.CPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r0 := rusageCPU(t)
	// Spin until getrusage has seen 100 ms of CPU, bounded in time: on a
	// busy machine the comparison below holds for whatever was seen.
	for deadline := time.Now().Add(3 * time.Second); rusageCPU(t)-r0 < 100*time.Millisecond && time.Now().Before(deadline); {
	}
	used := rusageCPU(t) - r0
	after, err := m.CPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if used <= 0 {
		t.Fatalf("3 s of spinning used no CPU by getrusage")
	}
	// Other tests run in parallel in this process, so /proc may see more.
	if d := after - before; d < used-30*time.Millisecond {
		t.Fatalf("/proc says %v of CPU, getrusage %v", d, used)
	}
	mem, err := readMemory(os.Getpid())
	if err != nil || mem.RSSBytes <= 0 || mem.PeakBytes < mem.RSSBytes {
		t.Fatalf("memory %+v, %v", mem, err)
	}
}

func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	status := "Name:\temma-gateway\nVmPeak:\t 1500000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	m, err := parseProcStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(memory{RSSBytes: 40 << 20, PeakBytes: 50 << 20}, m); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, err := parseProcStatus(strings.NewReader("Name:\tx\nVmRSS:\t12 MB\nVmHWM:\t1 kB\n")); err == nil {
		t.Fatal("a size not in kB was accepted")
	}
	if _, err := parseProcStatus(strings.NewReader("Name:\tkthreadd\n")); err == nil {
		t.Fatal("a status without VmRSS was accepted")
	}
}

// TestPromMeterScrapesProcessCPU scrapes a real promhttp registry with the
// Go client's process collector, as the gateway's /metrics has, and gets
// this process's CPU time as /proc says it.
func TestPromMeterScrapesProcessCPU(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("the process collector reads /proc")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A metric whose name starts with the one wanted must not be taken.
	decoy := prometheus.NewCounter(prometheus.CounterOpts{Name: "process_cpu_seconds_total_decoy", Help: "not it"})
	decoy.Add(1e6)
	reg.MustRegister(decoy)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)

	// Enough CPU used that the collector's 10 ms ticks show it.
	for deadline := time.Now().Add(20 * time.Second); rusageCPU(t) < 100*time.Millisecond && time.Now().Before(deadline); {
	}
	m := promMeter{url: srv.URL + "/metrics", client: srv.Client()}
	scraped, err := m.CPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	own, err := procMeter{os.Getpid()}.CPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Both read this process's utime+stime; the second read is later.
	if scraped <= 0 || scraped > own || own-scraped > time.Second {
		t.Fatalf("scraped %v, /proc says %v", scraped, own)
	}

	notProm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# HELP go_goroutines x\ngo_goroutines 7\n"))
	}))
	t.Cleanup(notProm.Close)
	if _, err := (promMeter{url: notProm.URL, client: notProm.Client()}).CPU(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "process_cpu_seconds_total") {
		t.Fatalf("want an error naming the missing metric, got %v", err)
	}
}

func TestParseProcessCPUWithLabelsAndTimestamp(t *testing.T) {
	t.Parallel()
	v, err := parseProcessCPU(strings.NewReader("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total{job=\"gw\"} 12.5 1700000000000\n"))
	if err != nil || v != 12.5 {
		t.Fatalf("got %v, %v", v, err)
	}
	if got := defaultMetricsURL("http://127.0.0.1:8080/some/path?x=1"); got != "http://127.0.0.1:8080/metrics" {
		t.Fatalf("metrics URL %q", got)
	}
}
