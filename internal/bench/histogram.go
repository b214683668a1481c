package bench

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^histSubBits nanoseconds are counted exactly, larger ones in
// buckets of 2^(histSubBits-1) per power of two, so that every recorded
// value is known to within 1/64 (1.6%) whatever its magnitude, in a fixed
// 30 KiB and without allocating on Record. Not safe for concurrent use: each
// load-generating worker keeps its own and they are merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    int64
	sum    float64
}

const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits
	histHalf     = histSubCount / 2
	histBuckets  = histSubCount + (63-histSubBits)*histHalf // int64 has 63 value bits
)

// bucketOf returns the index of the bucket holding v (nanoseconds, >= 0).
func bucketOf(v int64) int {
	if v < histSubCount {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - histSubBits // >= 1
	top := int(v >> shift)                       // in [histHalf, histSubCount)
	return histSubCount + (shift-1)*histHalf + top - histHalf
}

// upperOf returns the largest value bucket i holds: percentiles are
// reported from above, so they never flatter.
func upperOf(i int) int64 {
	if i < histSubCount {
		return int64(i)
	}
	shift := (i-histSubCount)/histHalf + 1
	top := int64((i-histSubCount)%histHalf + histHalf)
	return (top+1)<<shift - 1
}

// Record counts one latency.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *histogram) Merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is how many values were recorded.
func (h *histogram) Count() uint64 { return h.total }

// Max is the largest value recorded, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the mean of the values recorded.
func (h *histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value at or below which a fraction q (0..1) of the
// recorded values lie, rounded up to its bucket's upper bound and capped by
// the exact maximum.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(upperOf(i), h.max))
		}
	}
	return time.Duration(h.max)
}
