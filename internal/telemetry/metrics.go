package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry (no global state) holding the Go runtime
// and process collectors, for the wiring to give every component as its
// Registerer and to serve on /metrics. Each component registers its own
// metrics on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// LatencyBuckets returns the histogram buckets of the gateway's latencies,
// in seconds: from half a millisecond (a publish to a local broker) to five
// seconds (past the spool deadline).
func LatencyBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
}
