package sinks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrSpoolFull is returned (wrapped in [ErrUnavailable]) when the spool has
// no room for an event: the caller must answer 503 rather than accept it.
var ErrSpoolFull = errors.New("spool full")

// ErrSpoolInUse is returned by [OpenSpool] and [InspectSpool] when another
// process (or another Spool of this one) holds the spool directory: two
// writers would interleave segments and replay each other's records.
var ErrSpoolInUse = errors.New("spool directory in use by a running gateway")

// errSpoolClosed is returned by Append after Shutdown.
var errSpoolClosed = errors.New("spool closed")

// errSpoolNotStarted is returned by Append before Start.
var errSpoolNotStarted = errors.New("spool not started")

// SpoolConfig configures the local write-ahead spool.
type SpoolConfig struct {
	// Dir holds the segment files. Empty disables the spool: a failed
	// publish is then answered 503.
	Dir string
	// MaxBytes caps the spool's size on disk; beyond it appends fail with
	// ErrSpoolFull. Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is sealed and a new one
	// started. Default 16 MiB.
	SegmentBytes int64
	// After is how long a publish waits for Kafka before the event is
	// spooled instead. Default 2 s.
	After time.Duration
	// ReplayBatch is the most records replayed in one produce (bounded
	// too by the Kafka MaxRequestBytes). Default 500.
	ReplayBatch int
	// ReplayBackoff is the replayer's pause while Kafka refuses the
	// records, doubled from Min up to Max, with jitter. Default 100 ms to
	// 5 s.
	ReplayBackoff Backoff
	// ReplayPoll is how often an idle replayer looks for records besides
	// being told of each append. Default 1 s.
	ReplayPoll time.Duration
}

// DefaultSpoolConfig returns the defaults documented on [SpoolConfig].
func DefaultSpoolConfig() SpoolConfig {
	return SpoolConfig{MaxBytes: 1 << 30, SegmentBytes: 16 << 20, After: 2 * time.Second, ReplayBatch: 500,
		ReplayBackoff: Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}, ReplayPoll: time.Second}
}

// Validate reports every problem with c at once.
func (c SpoolConfig) Validate() error {
	if c.Dir == "" {
		return nil
	}
	var errs []error
	if c.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("spool: max bytes must be at least 1 MiB, not %d", c.MaxBytes))
	}
	if c.SegmentBytes < 4096 || c.SegmentBytes > c.MaxBytes {
		errs = append(errs, fmt.Errorf("spool: segment bytes must be between 4 KiB and the max bytes, not %d", c.SegmentBytes))
	}
	if c.After <= 0 {
		errs = append(errs, fmt.Errorf("spool: the publish deadline before spooling must be positive, not %s", c.After))
	}
	if c.ReplayBatch < 1 {
		errs = append(errs, fmt.Errorf("spool: replay batch must be at least 1, not %d", c.ReplayBatch))
	}
	if err := c.ReplayBackoff.validate("spool: replay"); err != nil {
		errs = append(errs, err)
	}
	if c.ReplayPoll <= 0 {
		errs = append(errs, fmt.Errorf("spool: replay poll must be positive, not %s", c.ReplayPoll))
	}
	return errors.Join(errs...)
}

// The record framing: magic, payload length, CRC-32C of length and payload,
// payload. The magic lets a reader find the next record after a corrupted
// one; the CRC tells a torn or flipped record from a good one.
const (
	recordMagic  uint32 = 0xE33A5F01
	headerSize          = 12
	maxRecord           = 64 << 20
	segmentExt          = ".seg"
	segmentDigit        = 20
	// lockName is the advisory lock file of a spool directory. flock, not
	// a PID file: the kernel drops it when the holder dies, so a crashed
	// gateway never leaves a stale lock behind.
	lockName = "spool.lock"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// SpoolStats is a snapshot of the spool.
type SpoolStats struct {
	// Records not yet acknowledged by Kafka.
	Records int64
	// Bytes on disk.
	Bytes int64
	// Oldest is when the oldest unacknowledged record was spooled (zero
	// when empty).
	Oldest time.Time
	// Appended, Replayed and Corrupt count records since start; Fsyncs
	// counts group commits.
	Appended, Replayed, Corrupt, Fsyncs int64
}

// Spool is a write-ahead log of Kafka messages on local disk, made of
// segment files. Appends are group-committed: one fsync serves every
// append queued while the previous one ran. A replayer (run by [Kafka])
// sends sealed segments to Kafka in order and deletes a segment only once
// every record in it is acknowledged.
//
// The spool is written here rather than taken from a WAL library because
// what it needs is small (append, fsync, read sealed segments in order,
// delete) and the well-known Go WALs either keep an index we do not need
// (tidwall/wal) or come with a database (etcd's wal).
type Spool struct {
	cfg SpoolConfig
	log *slog.Logger

	appends chan *appendReq
	rotate  chan chan error
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	started bool         // guarded by closeMu
	closeMu sync.RWMutex // held for reading by Append, for writing by Start and Shutdown
	lock    *os.File     // flock'ed for the spool's lifetime

	// owned by the writer goroutine
	active     *os.File
	activeSeq  uint64
	activeSize int64
	nextSeq    uint64

	bytes    atomic.Int64 // on disk, reserved included
	records  atomic.Int64 // unacknowledged
	appended atomic.Int64
	replayed atomic.Int64
	corrupt  atomic.Int64
	fsyncs   atomic.Int64

	mu     sync.Mutex
	oldest map[uint64]time.Time // by segment: first record's spool time
	count  map[uint64]int64     // by segment: intact records

	notify chan struct{} // a record was appended
}

type appendReq struct {
	buf  []byte
	n    int
	at   time.Time
	done chan error
}

// OpenSpool opens (creating if needed) the spool in cfg.Dir, counting the
// records a previous run left for replay. Appends wait for Start.
func OpenSpool(cfg SpoolConfig, log *slog.Logger) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockSpool(cfg.Dir, true)
	if err != nil {
		return nil, err
	}
	s, err := openLocked(cfg, log, lock)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// lockSpool takes the directory's advisory lock, without waiting: a spool
// held by a running gateway is refused with [ErrSpoolInUse]. create is
// false for readers, which must not leave a lock file in a directory they
// only look at.
func lockSpool(dir string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), flags, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool %s: %w", dir, ErrSpoolInUse)
		}
		return nil, fmt.Errorf("spool: lock: %w", err)
	}
	return f, nil
}

func openLocked(cfg SpoolConfig, log *slog.Logger, lock *os.File) (*Spool, error) {
	s := &Spool{
		lock:    lock,
		cfg:     cfg,
		log:     log,
		appends: make(chan *appendReq, 1024),
		rotate:  make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		oldest:  map[uint64]time.Time{},
		count:   map[uint64]int64{},
		notify:  make(chan struct{}, 1),
	}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, seq := range segs {
		info, err := os.Stat(s.path(seq))
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		s.bytes.Add(info.Size())
		n, first, err := s.countSegment(seq)
		if err != nil {
			return nil, err
		}
		s.records.Add(int64(n))
		s.count[seq] = int64(n)
		if n > 0 {
			s.oldest[seq] = first
		}
		s.nextSeq = seq + 1
	}
	if err := s.openActive(); err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		log.Info("spool holds records of a previous run; replaying them", "records", s.records.Load(), "segments", len(segs))
	}
	return s, nil
}

// Start starts the goroutine that writes appends. It returns at once.
func (s *Spool) Start(_ context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	switch {
	case s.closed.Load():
		return errSpoolClosed
	case s.started:
		return errors.New("spool: already started")
	}
	s.started = true
	go s.writer()
	return nil
}

func (s *Spool) path(seq uint64) string { return segmentPath(s.cfg.Dir, seq) }

func segmentPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", segmentDigit, seq, segmentExt))
}

func (s *Spool) segments() ([]uint64, error) { return listSegments(s.cfg.Dir) }

// listSegments lists the segment sequence numbers in dir, oldest first.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || e.IsDir() {
			continue
		}
		if seq, err := strconv.ParseUint(name, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (s *Spool) openActive() error {
	f, err := os.OpenFile(s.path(s.nextSeq), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		f.Close()
		return err
	}
	s.active, s.activeSeq, s.activeSize = f, s.nextSeq, 0
	s.nextSeq++
	return nil
}

// Append writes msgs to the spool and returns once they are fsynced.
func (s *Spool) Append(ctx context.Context, msgs ...kafka.Message) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	switch {
	case s.closed.Load():
		return errSpoolClosed
	case !s.started:
		return errSpoolNotStarted
	}
	now := time.Now()
	var buf []byte
	for _, m := range msgs {
		buf = appendRecord(buf, m, now)
	}
	if s.bytes.Add(int64(len(buf))) > s.cfg.MaxBytes {
		s.bytes.Add(-int64(len(buf)))
		return ErrSpoolFull
	}
	req := &appendReq{buf: buf, n: len(msgs), at: now, done: make(chan error, 1)}
	select {
	case s.appends <- req:
	case <-ctx.Done():
		s.bytes.Add(-int64(len(buf)))
		return ctx.Err()
	}
	// Once queued, the append is finished even if ctx ends: the caller then
	// gets ctx's error, but the record may be in the spool and replayed
	// (at-least-once, deduplicated by event_id downstream).
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer owns the active segment: it group-commits appends and seals
// segments.
func (s *Spool) writer() {
	defer close(s.done)
	var batch []*appendReq
	for {
		select {
		case req := <-s.appends:
			batch = append(batch[:0], req)
		drain:
			for len(batch) < 4096 {
				select {
				case r := <-s.appends:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			s.commit(batch)
		case reply := <-s.rotate:
			reply <- s.seal()
		case <-s.stop:
			// Append holds closeMu while queueing, so nothing is queued
			// after stop; finish what is.
			for {
				select {
				case r := <-s.appends:
					s.commit([]*appendReq{r})
					continue
				default:
				}
				break
			}
			if err := s.active.Sync(); err != nil {
				s.log.Error("spool: final fsync", "error", err)
			}
			s.active.Close()
			return
		}
	}
}

func (s *Spool) commit(batch []*appendReq) {
	var buf bytes.Buffer
	n := 0
	for _, r := range batch {
		buf.Write(r.buf)
		n += r.n
	}
	_, err := s.active.Write(buf.Bytes())
	if err == nil {
		err = s.active.Sync()
		s.fsyncs.Add(1)
	}
	if err != nil {
		err = fmt.Errorf("spool: write: %w", err)
		for _, r := range batch {
			s.bytes.Add(-int64(len(r.buf)))
		}
		// A failed write may leave a torn record at the tail; seal the
		// segment so that the next records start clean after it.
		_ = s.seal()
	} else {
		s.mu.Lock()
		if _, ok := s.oldest[s.activeSeq]; !ok {
			s.oldest[s.activeSeq] = batch[0].at
		}
		s.count[s.activeSeq] += int64(n)
		s.mu.Unlock()
		s.activeSize += int64(buf.Len())
		s.records.Add(int64(n))
		s.appended.Add(int64(n))
		if s.activeSize >= s.cfg.SegmentBytes {
			if serr := s.seal(); serr != nil {
				s.log.Error("spool: sealing a segment", "error", serr)
			}
		}
	}
	for _, r := range batch {
		r.done <- err
	}
	if err == nil {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// seal closes the active segment (if it holds anything) and opens the next.
func (s *Spool) seal() error {
	if s.activeSize == 0 {
		return nil
	}
	if err := s.active.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return s.openActive()
}

// Stats returns a snapshot of the spool.
func (s *Spool) Stats() SpoolStats {
	st := SpoolStats{
		Records:  s.records.Load(),
		Bytes:    s.bytes.Load(),
		Appended: s.appended.Load(),
		Replayed: s.replayed.Load(),
		Corrupt:  s.corrupt.Load(),
		Fsyncs:   s.fsyncs.Load(),
	}
	s.mu.Lock()
	for _, t := range s.oldest {
		if st.Oldest.IsZero() || t.Before(st.Oldest) {
			st.Oldest = t
		}
	}
	s.mu.Unlock()
	return st
}

// Pending reports whether records wait for replay.
func (s *Spool) Pending() bool { return s.records.Load() > 0 }

// Room reports whether the spool can take more events.
func (s *Spool) Room() error {
	if s.bytes.Load() >= s.cfg.MaxBytes {
		return ErrSpoolFull
	}
	return nil
}

// Shutdown stops appends, then fsyncs and closes the active segment,
// waiting for that until ctx is done. Every append acknowledged before is
// already fsynced. Safe without Start and safe twice.
func (s *Spool) Shutdown(ctx context.Context) error {
	s.closeMu.Lock()
	if s.closed.Swap(true) {
		s.closeMu.Unlock()
		return nil
	}
	started := s.started
	s.closeMu.Unlock()
	if !started {
		close(s.done)
		err := s.active.Close()
		s.lock.Close() // releases the flock
		return err
	}
	close(s.stop)
	released := make(chan struct{})
	go func() {
		<-s.done
		// Closing the file releases the flock, once the writer is done
		// with the directory.
		s.lock.Close()
		close(released)
	}()
	select {
	case <-released:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("spool shutdown: %w", ctx.Err())
	}
}

// sealed returns the segments the replayer may read: all but the active
// one. When only the active segment holds records, it is sealed first.
func (s *Spool) sealed() ([]uint64, error) {
	if s.closed.Load() {
		return nil, errSpoolClosed
	}
	reply := make(chan error, 1)
	select {
	case s.rotate <- reply:
		if err := <-reply; err != nil {
			return nil, err
		}
	case <-s.done:
		return nil, errSpoolClosed
	}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	// The highest is the (new, empty) active segment; it may have taken
	// records since, which the next round will seal.
	if len(segs) > 0 {
		segs = segs[:len(segs)-1]
	}
	return segs, nil
}

// spooled is one record read back.
type spooled struct {
	msg kafka.Message
}

// readSegment reads every intact record of a sealed segment. Corrupted
// stretches (a torn tail, a flipped byte) are skipped: the reader looks for
// the next record magic whose CRC checks, so one bad record never stops
// the replay of the rest. It returns the number of corrupt stretches.
func readSegment(path string) (recs []spooled, corrupt int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	pos := 0
	bad := false
	for pos < len(data) {
		m, n, ok := parseRecord(data[pos:])
		if !ok {
			if !bad {
				corrupt++
				bad = true
			}
			next := bytes.Index(data[pos+1:], magicBytes)
			if next < 0 {
				break
			}
			pos += 1 + next
			continue
		}
		bad = false
		recs = append(recs, spooled{msg: m})
		pos += n
	}
	return recs, corrupt, nil
}

func (s *Spool) countSegment(seq uint64) (int, time.Time, error) {
	recs, corrupt, err := readSegment(s.path(seq))
	if err != nil {
		return 0, time.Time{}, err
	}
	if corrupt > 0 {
		s.log.Warn("spool: segment has corrupted records; they will be skipped", "segment", filepath.Base(s.path(seq)), "stretches", corrupt)
	}
	var first time.Time
	if len(recs) > 0 {
		first = recs[0].msg.Time
	}
	return len(recs), first, nil
}

// remove deletes a fully replayed segment.
func (s *Spool) remove(seq uint64) error {
	info, err := os.Stat(s.path(seq))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(s.path(seq)); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.bytes.Add(-info.Size())
	s.mu.Lock()
	s.records.Add(-s.count[seq])
	delete(s.oldest, seq)
	delete(s.count, seq)
	s.mu.Unlock()
	return syncDir(s.cfg.Dir)
}

var magicBytes = binary.BigEndian.AppendUint32(nil, recordMagic)

// appendRecord frames m. The payload is: spool time (unix ns), topic, key
// (-1 length for nil), value, headers.
func appendRecord(dst []byte, m kafka.Message, at time.Time) []byte {
	var p []byte
	p = binary.BigEndian.AppendUint64(p, uint64(at.UnixNano()))
	p = appendBytes16(p, []byte(m.Topic))
	if m.Key == nil {
		p = binary.BigEndian.AppendUint32(p, 0xFFFFFFFF)
	} else {
		p = appendBytes32(p, m.Key)
	}
	p = appendBytes32(p, m.Value)
	p = binary.BigEndian.AppendUint16(p, uint16(len(m.Headers)))
	for _, h := range m.Headers {
		p = appendBytes16(p, []byte(h.Key))
		p = appendBytes32(p, h.Value)
	}
	dst = binary.BigEndian.AppendUint32(dst, recordMagic)
	lenAt := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
	crc := crc32.Update(crc32.Checksum(dst[lenAt:], crcTable), crcTable, p)
	dst = binary.BigEndian.AppendUint32(dst, crc)
	return append(dst, p...)
}

func appendBytes16(dst, b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(b))), b...)
}

func appendBytes32(dst, b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(b))), b...)
}

// parseRecord reads one record at the start of b: the message, the bytes
// it takes, and whether it is intact.
func parseRecord(b []byte) (kafka.Message, int, bool) {
	var m kafka.Message
	if len(b) < headerSize || binary.BigEndian.Uint32(b) != recordMagic {
		return m, 0, false
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > maxRecord || uint64(len(b)-headerSize) < uint64(n) {
		return m, 0, false
	}
	p := b[headerSize : headerSize+int(n)]
	if crc32.Update(crc32.Checksum(b[4:8], crcTable), crcTable, p) != binary.BigEndian.Uint32(b[8:]) {
		return m, 0, false
	}
	r := bufio.NewReader(bytes.NewReader(p))
	var at uint64
	if binary.Read(r, binary.BigEndian, &at) != nil {
		return m, 0, false
	}
	m.Time = time.Unix(0, int64(at))
	topic, ok := read16(r)
	if !ok {
		return m, 0, false
	}
	m.Topic = string(topic)
	if m.Key, ok = read32(r, true); !ok {
		return m, 0, false
	}
	if m.Value, ok = read32(r, false); !ok {
		return m, 0, false
	}
	var nh uint16
	if binary.Read(r, binary.BigEndian, &nh) != nil {
		return m, 0, false
	}
	for range nh {
		k, ok1 := read16(r)
		v, ok2 := read32(r, false)
		if !ok1 || !ok2 {
			return m, 0, false
		}
		m.Headers = append(m.Headers, kafka.Header{Key: string(k), Value: v})
	}
	return m, headerSize + int(n), true
}

func read16(r io.Reader) ([]byte, bool) {
	var n uint16
	if binary.Read(r, binary.BigEndian, &n) != nil {
		return nil, false
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err == nil
}

func read32(r io.Reader, nullable bool) ([]byte, bool) {
	var n uint32
	if binary.Read(r, binary.BigEndian, &n) != nil {
		return nil, false
	}
	if n == 0xFFFFFFFF && nullable {
		return nil, true
	}
	if n > maxRecord {
		return nil, false
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err == nil
}

// syncDir makes a file's creation or removal durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsync dir: %w", err)
	}
	return nil
}
