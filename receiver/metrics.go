package receiver

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/emma-gateway/emma-gateway/internal/dedup"
	"github.com/emma-gateway/emma-gateway/internal/telemetry"
)

// metrics are the receiver's Prometheus metrics, registered on the
// registerer the wiring gives it.
type metrics struct {
	// requests counts webhook requests by event name ("" before one is
	// read, "unrecognized" for unknown names, to bound cardinality),
	// delivery method and outcome.
	requests *prometheus.CounterVec
	// counters holds requests' children by label set, resolved on first
	// use: WithLabelValues per request checks and hashes three strings and
	// takes the vector's lock; the label sets are few (bounded by the
	// known names, methods and outcomes), and creating them all up front
	// would export hundreds of zero series.
	counters sync.Map // requestLabels -> prometheus.Counter
	// duration observes webhook request latency by outcome; its children
	// are resolved once, the outcomes being a fixed set.
	duration map[string]prometheus.Observer
	// durationOther takes an outcome outside that set (none today).
	durationOther *prometheus.HistogramVec
	// inFlight is the number of webhook requests being served.
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "emma_gateway_webhook_request_duration_seconds",
		Help:    "Webhook request latency by outcome.",
		Buckets: telemetry.LatencyBuckets(),
	}, []string{"outcome"})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emma_gateway_webhook_requests_total",
			Help: "Webhook requests by event name, delivery method (GET/POST) and outcome.",
		}, []string{"event", "delivery", "outcome"}),
		duration:      map[string]prometheus.Observer{},
		durationOther: duration,
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "emma_gateway_webhook_requests_in_flight",
			Help: "Webhook requests being served.",
		}),
	}
	// Every outcome a webhook request can end with ("" for none set).
	for _, o := range []string{outcomeAccepted, outcomeUnrecognized, outcomeDuplicate, outcomeMalformed, outcomeInvalid, outcomeUnauthorized,
		outcomeForbiddenAccount, outcomeForbiddenAddress, outcomeTooLarge, outcomeRateLimited, outcomeUnavailable,
		outcomeNotAllowed, outcomeNotFound, ""} {
		m.duration[o] = duration.WithLabelValues(o)
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("receiver metrics: %w", err)
	}
	return m, nil
}

// requestLabels is one label set of the requests counter.
type requestLabels struct{ event, delivery, outcome string }

// observe records a finished webhook request.
func (m *metrics) observe(event, delivery, outcome string, seconds float64) {
	key := requestLabels{event, delivery, outcome}
	c, ok := m.counters.Load(key)
	if !ok {
		c, _ = m.counters.LoadOrStore(key, m.requests.WithLabelValues(event, delivery, outcome))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.duration[outcome]
	if !ok {
		o = m.durationOther.WithLabelValues(outcome)
	}
	o.Observe(seconds)
}

// registerDedup exposes the dedup window's counters: Evicted growing means
// the window is shorter than configured (raise --dedup-max-entries).
func registerDedup(reg prometheus.Registerer, w *dedup.Window) error {
	stat := func(f func(dedup.Stats) float64) func() float64 {
		return func() float64 { return f(w.Stats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "emma_gateway_dedup_remembered",
			Help: "Event ids remembered as durable by the dedup window.",
		}, stat(func(s dedup.Stats) float64 { return float64(s.Remembered) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "emma_gateway_dedup_waits_total",
			Help: "Callbacks that waited for a copy of themselves in flight.",
		}, stat(func(s dedup.Stats) float64 { return float64(s.Waits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "emma_gateway_dedup_evicted_total",
			Help: "Event ids forgotten before their window ended because the dedup window was full.",
		}, stat(func(s dedup.Stats) float64 { return float64(s.Evicted) })),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("receiver dedup metrics: %w", err)
	}
	return nil
}
