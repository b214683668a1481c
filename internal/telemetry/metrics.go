package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's Prometheus metrics, registered on their own
// registry (no global state), served on /metrics.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts webhook requests by event name ("" before one is
	// read, "unrecognized" for unknown names, to bound cardinality),
	// delivery method and outcome.
	Requests *prometheus.CounterVec
	// RequestDuration observes webhook request latency by outcome.
	RequestDuration *prometheus.HistogramVec
	// InFlight is the number of webhook requests being served.
	InFlight prometheus.Gauge
	// PublishDuration observes the time to make one message durable, by
	// topic and result (kafka, spooled, error).
	PublishDuration *prometheus.HistogramVec
	// Dropped counts events a route drops on purpose, by event name.
	Dropped *prometheus.CounterVec
}

// NewMetrics registers the gateway's metrics, plus the Go runtime and
// process collectors, on a new registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emma_gateway_webhook_requests_total",
			Help: "Webhook requests by event name, delivery method (GET/POST) and outcome.",
		}, []string{"event", "delivery", "outcome"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "emma_gateway_webhook_request_duration_seconds",
			Help:    "Webhook request latency by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "emma_gateway_webhook_requests_in_flight",
			Help: "Webhook requests being served.",
		}),
		PublishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "emma_gateway_publish_duration_seconds",
			Help:    "Time to make one message durable, by topic and result (kafka, spooled, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"topic", "result"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emma_gateway_events_dropped_total",
			Help: "Events dropped on purpose by a drop route, by event name.",
		}, []string{"event"}),
	}
	reg.MustRegister(m.Requests, m.RequestDuration, m.InFlight, m.PublishDuration, m.Dropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
