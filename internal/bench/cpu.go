package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports (the kernel's ABI,
// whatever its internal HZ), and Go cannot ask sysconf without cgo.
const clockTicks = 100

// cpuMeter reads the CPU time (user and system) a target process has used
// so far. The difference of two readings is what the target spent between
// them, whatever the load generator spent.
type cpuMeter interface {
	CPU(ctx context.Context) (time.Duration, error)
	// Source says where the figure comes from, for the report.
	Source() string
}

// procMeter reads /proc/PID/stat.
type procMeter struct{ pid int }

func (m procMeter) Source() string { return fmt.Sprintf("/proc/%d/stat", m.pid) }

func (m procMeter) CPU(context.Context) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.pid))
	if err != nil {
		return 0, err
	}
	user, sys, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", m.pid, err)
	}
	return ticks(user + sys), nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / clockTicks) }

// parseProcStat returns utime and stime (fields 14 and 15, in clock
// ticks) of a /proc/PID/stat line. The command name, field 2, is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseProcStat(b []byte) (utime, stime uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name in parentheses")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// memory is a process's resident set now and at its peak.
type memory struct {
	RSSBytes  int64 `json:"rss_bytes"`
	PeakBytes int64 `json:"peak_rss_bytes"`
}

// readMemory reads VmRSS and VmHWM from /proc/PID/status.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	return parseProcStatus(f)
}

// parseProcStatus reads the "VmRSS:   1234 kB" and "VmHWM: ..." lines of
// /proc/PID/status.
func parseProcStatus(r io.Reader) (memory, error) {
	var m memory
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("%s: %q, want a number of kB", k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSSBytes = n << 10
		} else {
			m.PeakBytes = n << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found != 2 {
		return m, errors.New("no VmRSS and VmHWM lines")
	}
	return m, nil
}

// promMeter scrapes process_cpu_seconds_total, which the Prometheus Go
// client's process collector exports (the gateway's /metrics does), from
// a target that is not our child.
type promMeter struct {
	url    string
	client *http.Client
}

func (m promMeter) Source() string { return m.url }

func (m promMeter) CPU(ctx context.Context) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return 0, err
	}
	// The text format: what promhttp answers when asked for it.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	res, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", m.url, res.Status)
	}
	s, err := parseProcessCPU(res.Body)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.url, err)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// parseProcessCPU finds the process_cpu_seconds_total sample in the
// Prometheus text exposition format.
func parseProcessCPU(r io.Reader) (float64, error) {
	const name = "process_cpu_seconds_total"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a comment, another metric, or a longer name
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("malformed sample %q", line)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			return 0, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("sample %q: %w", line, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no " + name + " (the target needs the Prometheus process collector)")
}

// defaultMetricsURL is {origin of target}/metrics.
func defaultMetricsURL(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/metrics"}).String()
}

// loadAverage is /proc/loadavg's three figures; nil where unreadable.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 0, 3)
	for _, s := range f[:3] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}
