package sinks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the producer's counters and the spool's state.
type collector struct {
	k *Kafka
}

var (
	descRequests  = prometheus.NewDesc("emma_gateway_kafka_producer_requests_total", "Produce requests sent (each carries every partition of one broker that had records waiting).", nil, nil)
	descMessages  = prometheus.NewDesc("emma_gateway_kafka_producer_messages_total", "Messages sent in produce requests, retries included; over requests_total, the messages per request.", nil, nil)
	descBytes     = prometheus.NewDesc("emma_gateway_kafka_producer_bytes_total", "Bytes of the messages sent (keys, values, headers, record framing).", nil, nil)
	descErrors    = prometheus.NewDesc("emma_gateway_kafka_producer_errors_total", "Messages a produce request failed (a partition error or a failed request).", nil, nil)
	descRetries   = prometheus.NewDesc("emma_gateway_kafka_producer_retries_total", "Messages sent again after a retriable error.", nil, nil)
	descRefreshes = prometheus.NewDesc("emma_gateway_kafka_producer_metadata_refreshes_total", "Metadata refreshes forced by a leadership or connection error.", nil, nil)

	descSpoolRecords  = prometheus.NewDesc("emma_gateway_spool_records", "Records in the spool not yet acknowledged by Kafka.", nil, nil)
	descSpoolBytes    = prometheus.NewDesc("emma_gateway_spool_bytes", "Bytes the spool takes on disk.", nil, nil)
	descSpoolAge      = prometheus.NewDesc("emma_gateway_spool_oldest_age_seconds", "Age of the oldest record in the spool (0 when empty).", nil, nil)
	descSpoolAppended = prometheus.NewDesc("emma_gateway_spool_appended_total", "Records appended to the spool.", nil, nil)
	descSpoolReplayed = prometheus.NewDesc("emma_gateway_spool_replayed_total", "Spooled records replayed to Kafka.", nil, nil)
	descSpoolCorrupt  = prometheus.NewDesc("emma_gateway_spool_corrupt_total", "Corrupted stretches skipped in spool segments.", nil, nil)
	descSpoolFsyncs   = prometheus.NewDesc("emma_gateway_spool_fsyncs_total", "Group commits (fsyncs) of the spool.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.k.prod.stats()
	for _, m := range []struct {
		d *prometheus.Desc
		v int64
	}{{descRequests, st.Requests}, {descMessages, st.Records}, {descBytes, st.Bytes}, {descErrors, st.Failures}, {descRetries, st.Retries}, {descRefreshes, st.Refreshes}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}

	if c.k.spool == nil {
		return
	}
	ss := c.k.spool.Stats()
	age := 0.0
	if !ss.Oldest.IsZero() {
		age = time.Since(ss.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descSpoolRecords, prometheus.GaugeValue, float64(ss.Records))
	ch <- prometheus.MustNewConstMetric(descSpoolBytes, prometheus.GaugeValue, float64(ss.Bytes))
	ch <- prometheus.MustNewConstMetric(descSpoolAge, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(descSpoolAppended, prometheus.CounterValue, float64(ss.Appended))
	ch <- prometheus.MustNewConstMetric(descSpoolReplayed, prometheus.CounterValue, float64(ss.Replayed))
	ch <- prometheus.MustNewConstMetric(descSpoolCorrupt, prometheus.CounterValue, float64(ss.Corrupt))
	ch <- prometheus.MustNewConstMetric(descSpoolFsyncs, prometheus.CounterValue, float64(ss.Fsyncs))
}
