package sinks

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports kafka-go's Writer.Stats and the spool's state.
// Writer.Stats returns counters since its previous call, so the collector
// keeps the running totals.
type collector struct {
	k *Kafka

	mu                                         sync.Mutex
	writes, messages, bytes, errors, retries   float64
	batchSizeSum, batchCount, batchTimeSeconds float64
}

var (
	descWrites       = prometheus.NewDesc("emma_gateway_kafka_writer_writes_total", "Produce requests sent by the Kafka writer.", nil, nil)
	descMessages     = prometheus.NewDesc("emma_gateway_kafka_writer_messages_total", "Messages written by the Kafka writer.", nil, nil)
	descBytes        = prometheus.NewDesc("emma_gateway_kafka_writer_bytes_total", "Message bytes written by the Kafka writer.", nil, nil)
	descErrors       = prometheus.NewDesc("emma_gateway_kafka_writer_errors_total", "Failed produce attempts of the Kafka writer.", nil, nil)
	descRetries      = prometheus.NewDesc("emma_gateway_kafka_writer_retries_total", "Produce retries of the Kafka writer.", nil, nil)
	descBatchSize    = prometheus.NewDesc("emma_gateway_kafka_writer_batch_messages", "Messages per produce batch (sum and count since start).", nil, nil)
	descBatchSeconds = prometheus.NewDesc("emma_gateway_kafka_writer_batch_seconds_total", "Time spent in produce batches, summed.", nil, nil)
	descQueue        = prometheus.NewDesc("emma_gateway_kafka_writer_queue_length", "Messages queued in the Kafka writer.", nil, nil)

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
	st := c.k.writer.Stats()
	c.mu.Lock()
	c.writes += float64(st.Writes)
	c.messages += float64(st.Messages)
	c.bytes += float64(st.Bytes)
	c.errors += float64(st.Errors)
	c.retries += float64(st.Retries)
	c.batchSizeSum += float64(st.BatchSize.Sum)
	c.batchCount += float64(st.BatchSize.Count)
	c.batchTimeSeconds += st.BatchTime.Sum.Seconds()
	counters := []struct {
		d *prometheus.Desc
		v float64
	}{{descWrites, c.writes}, {descMessages, c.messages}, {descBytes, c.bytes}, {descErrors, c.errors}, {descRetries, c.retries}, {descBatchSeconds, c.batchTimeSeconds}}
	sum, count := c.batchSizeSum, c.batchCount
	c.mu.Unlock()
	for _, m := range counters {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v)
	}
	ch <- prometheus.MustNewConstSummary(descBatchSize, uint64(count), sum, nil)
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.QueueLength))

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
