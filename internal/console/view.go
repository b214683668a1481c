package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// view is what the page shows, already formatted: the HTML template and
// the JSON API (which the page's script draws from) carry the same one, so
// that the live page and the page without JavaScript cannot drift apart.
type view struct {
	Now         time.Time        `json:"now"`
	Clock       string           `json:"clock"`
	Mode        string           `json:"mode"`
	PollMS      int64            `json:"poll_ms"`
	Cards       []card           `json:"cards"`
	Outcomes    []outcomeView    `json:"outcomes"`
	Plot        plot             `json:"plot"`
	Recent      []callbackView   `json:"recent"`
	DeadLetters []deadLetterView `json:"dead_letters"`
}

type card struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Value  string `json:"value"`
	Detail string `json:"detail"`
	Class  string `json:"class"`
}

type outcomeView struct {
	Name       string `json:"name"`
	Class      string `json:"class"`
	LastMinute int64  `json:"last_minute"`
	Total      int64  `json:"total"`
}

type callbackView struct {
	Time        time.Time `json:"time"`
	Clock       string    `json:"clock"`
	Method      string    `json:"method"`
	Event       string    `json:"event"`
	Account     string    `json:"account"`
	Status      int       `json:"status"`
	Outcome     string    `json:"outcome"`
	Class       string    `json:"class"`
	LatencyMS   float64   `json:"latency_ms"`
	Latency     string    `json:"latency"`
	EventID     string    `json:"event_id"`
	Topic       string    `json:"topic,omitempty"`
	Partition   int32     `json:"partition"`
	Offset      int64     `json:"offset"`
	Spooled     bool      `json:"spooled"`
	Destination string    `json:"destination"`
}

type deadLetterView struct {
	Time     time.Time   `json:"time"`
	Clock    string      `json:"clock"`
	Method   string      `json:"method"`
	Event    string      `json:"event"`
	Account  string      `json:"account"`
	Reason   string      `json:"reason"`
	Fields   []fieldView `json:"fields"`
	Location string      `json:"location"`
}

type fieldView struct {
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// plot is the geometry of the answers-per-second plot, in the SVG's user
// units: the server renders it for pages without JavaScript, the script
// redraws it from the same numbers.
type plot struct {
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	Bars    []bar   `json:"bars"`
	P99Path string  `json:"p99_path"`
	Grid    []line  `json:"grid"`
	Labels  []label `json:"labels"`
	Summary string  `json:"summary"`
}

type bar struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Class string  `json:"class"`
}

type line struct {
	X1 float64 `json:"x1"`
	Y1 float64 `json:"y1"`
	X2 float64 `json:"x2"`
	Y2 float64 `json:"y2"`
}

type label struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Text   string  `json:"text"`
	Anchor string  `json:"anchor"`
	Class  string  `json:"class"`
}

// outcomeClass is the stylesheet's colour class of an outcome; any
// outcome without one is drawn as "other". Class names never come from a
// request.
func outcomeClass(o string) string {
	switch o {
	case "accepted", "duplicate", "unrecognized", "invalid", "malformed", "unauthorized", "rate_limited", "unavailable":
		return "o-" + o
	case "forbidden_account", "forbidden_address":
		return "o-forbidden"
	case "too_large", "method_not_allowed", "not_found":
		return "o-malformed"
	}
	return "o-other"
}

func buildView(s Snapshot, st State, cfg Config) view {
	v := view{
		Now:    s.Now.UTC(),
		Clock:  s.Now.UTC().Format("15:04:05"),
		Mode:   "production",
		PollMS: cfg.Poll.Milliseconds(),
	}
	if cfg.DevMode {
		v.Mode = "development"
	}
	if v.PollMS == 0 {
		v.PollMS = DefaultConfig().Poll.Milliseconds()
	}
	v.Cards = cards(s, st)
	for i, name := range s.Outcomes {
		v.Outcomes = append(v.Outcomes, outcomeView{Name: name, Class: outcomeClass(name), LastMinute: s.LastMinute.Counts[i], Total: s.Total.Counts[i]})
	}
	v.Plot = buildPlot(s)
	v.Recent = make([]callbackView, 0, len(s.Recent))
	for _, c := range s.Recent {
		v.Recent = append(v.Recent, callbackView{
			Time: c.Time.UTC(), Clock: c.Time.UTC().Format("15:04:05.000"),
			Method: c.Method, Event: orDash(c.Event), Account: account(c.Account),
			Status: c.Status, Outcome: c.Outcome, Class: outcomeClass(c.Outcome),
			LatencyMS: math.Round(float64(c.Latency)/1e3) / 1e3, Latency: duration(c.Latency),
			EventID: c.EventID, Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, Spooled: c.Spooled,
			Destination: destination(c.Topic, c.Partition, c.Offset, c.Spooled),
		})
	}
	v.DeadLetters = make([]deadLetterView, 0, len(s.DeadLetters))
	for _, d := range s.DeadLetters {
		dv := deadLetterView{
			Time: d.Time.UTC(), Clock: d.Time.UTC().Format("15:04:05.000"),
			Method: d.Method, Event: orDash(d.Event), Account: account(d.Account),
			Reason: d.Reason, Location: destination(d.Topic, d.Partition, d.Offset, false),
			Fields: make([]fieldView, 0, len(d.Fields)),
		}
		for _, f := range d.Fields {
			dv.Fields = append(dv.Fields, fieldView{Field: clip(f.Field), Rule: clip(f.Rule), Message: clip(f.Message)})
		}
		v.DeadLetters = append(v.DeadLetters, dv)
	}
	return v
}

func cards(s Snapshot, st State) []card {
	k := card{ID: "kafka", Label: "Kafka", Value: "unknown", Class: "warn"}
	if st.Kafka.Known {
		brokers := strings.Join(st.Kafka.Brokers, ", ")
		if st.Kafka.Embedded {
			brokers = "embedded development broker " + brokers
		}
		k.Detail = brokers
		if st.Kafka.Ready {
			k.Value, k.Class = "ready", "ok"
		} else {
			k.Value, k.Class = "not ready", "bad"
			if st.Kafka.Detail != "" {
				k.Detail = clip(st.Kafka.Detail) + " · " + brokers
			}
		}
	}
	sp := card{ID: "spool", Label: "Spool", Value: "off", Detail: "events Kafka cannot take are answered 503"}
	if st.Spool.Enabled {
		sp.Value = strconv.FormatInt(st.Spool.Records, 10) + " records"
		sp.Detail = size(st.Spool.Bytes)
		if st.Spool.MaxBytes > 0 {
			sp.Detail += " of " + size(st.Spool.MaxBytes)
		}
		sp.Class = "ok"
		if st.Spool.Records > 0 {
			sp.Class = "warn"
			sp.Detail += " · oldest " + age(s.Now.Sub(st.Spool.Oldest))
		}
		if st.Spool.MaxBytes > 0 && st.Spool.Bytes >= st.Spool.MaxBytes {
			sp.Class = "bad"
		}
	}
	notAccepted := s.Total.Answers
	if len(s.Total.Counts) > 0 {
		notAccepted -= s.Total.Counts[0]
	}
	dl := card{ID: "deadletters", Label: "Dead letters", Value: strconv.FormatInt(s.DeadLetterCount, 10), Detail: "since start"}
	if len(s.DeadLetters) > 0 {
		dl.Detail = "latest " + s.DeadLetters[0].Time.UTC().Format("15:04:05")
		dl.Class = "warn"
	}
	return []card{
		k, sp,
		{ID: "rate", Label: "Accepted/s", Value: rate(s.LastMinute.AcceptedPerSec), Detail: "last minute · " + rate(s.Total.AcceptedPerSec) + " over 15 min"},
		{ID: "p99", Label: "p99 latency", Value: orDash(duration(s.LastMinute.P99)), Detail: "last minute · " + orDash(duration(s.Total.P99)) + " over 15 min"},
		{ID: "answers", Label: "Answers", Value: strconv.FormatInt(s.Total.Answers, 10), Detail: strconv.FormatInt(notAccepted, 10) + " not accepted · 15 min"},
		dl,
	}
}

const (
	plotW, plotH                   = 960, 240
	padL, padR, padT, padB         = 52, 64, 12, 26
	innerW, innerH         float64 = plotW - padL - padR, plotH - padT - padB
)

func buildPlot(s Snapshot) plot {
	p := plot{Width: plotW, Height: plotH}
	n := len(s.Series)
	if n == 0 {
		return p
	}
	step := int64(Step / time.Second)
	rates := make([]float64, n)
	maxRate, maxP99 := 0.0, time.Duration(0)
	for i, pt := range s.Series {
		elapsed := min(step, s.Now.Unix()-pt.Start.Unix()+1)
		var sum int64
		for _, c := range pt.Counts {
			sum += c
		}
		rates[i] = float64(sum) / float64(elapsed)
		maxRate = max(maxRate, rates[i])
		maxP99 = max(maxP99, pt.P99)
	}
	top := niceCeil(maxRate)
	bw := innerW / float64(n)
	for i, pt := range s.Series {
		elapsed := float64(min(step, s.Now.Unix()-pt.Start.Unix()+1))
		y := padT + innerH
		for j, c := range pt.Counts {
			if c == 0 {
				continue
			}
			h := float64(c) / elapsed / top * innerH
			y -= h
			p.Bars = append(p.Bars, bar{X: r1(padL + float64(i)*bw + 0.5), Y: r1(y), W: r1(max(bw-1, 1)), H: r1(max(h, 0.8)), Class: outcomeClass(s.Outcomes[j])})
		}
	}
	for k := 0; k <= 4; k++ {
		y := r1(padT + innerH - float64(k)/4*innerH)
		p.Grid = append(p.Grid, line{X1: padL, Y1: y, X2: padL + innerW, Y2: y})
		p.Labels = append(p.Labels, label{X: padL - 6, Y: y + 4, Text: rate(top*float64(k)/4) + "/s", Anchor: "end", Class: "axis"})
	}
	if maxP99 > 0 {
		ptop := niceCeil(float64(maxP99) / 1e6) // ms
		var path strings.Builder
		pen := false
		for i, pt := range s.Series {
			if pt.P99 == 0 {
				pen = false
				continue
			}
			x := r1(padL + (float64(i)+0.5)*bw)
			y := r1(padT + innerH - float64(pt.P99)/1e6/ptop*innerH)
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%g %g ", cmd, x, y)
			pen = true
		}
		p.P99Path = strings.TrimSpace(path.String())
		for k := 0; k <= 4; k += 2 {
			y := r1(padT + innerH - float64(k)/4*innerH)
			p.Labels = append(p.Labels, label{X: padL + innerW + 6, Y: y + 4, Text: duration(time.Duration(ptop * float64(k) / 4 * 1e6)), Anchor: "start", Class: "axis p99-axis"})
		}
	}
	for k, text := range []string{"−15 min", "−10 min", "−5 min", "now"} {
		anchor := "middle"
		if k == 3 {
			anchor = "end"
		}
		p.Labels = append(p.Labels, label{X: r1(padL + innerW*float64(k)/3), Y: plotH - 6, Text: text, Anchor: anchor, Class: "axis"})
	}
	p.Summary = fmt.Sprintf("Answers per second by outcome over the last 15 minutes, up to %s/s; p99 latency up to %s.", rate(maxRate), orDash(duration(maxP99)))
	return p
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func r1(v float64) float64 { return math.Round(v*10) / 10 }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func account(id int64) string {
	if id == 0 {
		return "—"
	}
	return strconv.FormatInt(id, 10)
}

func destination(topic string, partition int32, offset int64, spooled bool) string {
	switch {
	case spooled:
		return "spooled"
	case topic == "":
		return "—"
	case partition < 0:
		return topic
	}
	return topic + " [" + strconv.Itoa(int(partition)) + "] @" + strconv.FormatInt(offset, 10)
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second).String()
}

func rate(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func size(b int64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatInt(b, 10) + " B"
	}
	v, u := float64(b), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + []string{"B", "KiB", "MiB", "GiB", "TiB"}[u]
}
