package kafkait

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestLeaderKilledUnderLoad SIGKILLs the broker leading the hot partition in
// the middle of an open-loop load of 300 callbacks a second (4,500 in all)
// to a gateway without a spool, and starts it again later. Every callback
// answered 200 must be in Kafka afterwards (none was answered 200 before
// every in-sync replica had it); those Kafka could not take meanwhile are
// 503 with Retry-After. Once the broker is back, the gateway takes callbacks
// again by itself, also after leadership returns to the restarted broker.
func TestLeaderKilledUnderLoad(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	g := startGateway(t, c.brokers, topicPrefix(t), true, nil)
	topic := g.topic("message_open")
	c.waitFullISR(t, 30*time.Second, topic)
	hot := hotPartition(3)
	victim := leaderOf(t, c, topic, hot)

	l := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		openLoop(ctx, g, l, 0, 4500, 300)
	}()
	time.Sleep(4 * time.Second)
	c.control(t, "kill", victim)
	killed := time.Now()
	time.Sleep(5 * time.Second)
	c.control(t, "start-node", victim)
	t.Logf("broker %d (leader of %s/%d) was down %v", victim, topic, hot, time.Since(killed).Round(time.Millisecond))
	wg.Wait()
	t.Logf("load: %s", l.percentiles())

	// Recovery by itself: once every replica is back in sync, callbacks are
	// taken again (a run of 100 answered 200), also after the preferred
	// leader, the restarted broker, leads again. Leadership may move while
	// this runs: a callback Kafka could not take within --publish-timeout
	// meanwhile is a 503, and counted.
	c.waitFullISR(t, 60*time.Second, topic)
	seq := 10000
	recovered := func(phase string) {
		t.Helper()
		start, run := time.Now(), 0
		for run < 100 && time.Since(start) < 30*time.Second {
			a := g.post(loadCallback(seq))
			l.record(seq, a, 0)
			seq++
			if a.status == 200 {
				run++
			} else {
				run = 0
			}
		}
		if run < 100 {
			t.Errorf("%s: no run of 100 callbacks answered 200 within 30 s", phase)
		}
		t.Logf("%s: 100 callbacks in a row answered 200 after %v", phase, time.Since(start).Round(time.Millisecond))
	}
	recovered("broker back in sync")
	deadline := time.Now().Add(20 * time.Second)
	for leaderOf(t, c, topic, hot) != victim && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("leader of %s/%d now broker %d", topic, hot, leaderOf(t, c, topic, hot))
	recovered("preferred leader elected again")
	verify(t, c, "leader SIGKILLed under load (no spool)", topic, l, 0)
	if len(l.ok) < l.sent/2 {
		t.Errorf("only %d of %d callbacks answered 200: the gateway did not take callbacks through the failover", len(l.ok), l.sent)
	}
}

// TestTwoOfThreeBrokersStopped stops two of the three brokers, so that the
// partitions keep one in-sync replica, below min.insync.replicas=2: Kafka
// answers NOT_ENOUGH_REPLICAS. A gateway with a spool answers 200, spools,
// and replays in order once the brokers are back; one without answers 503
// with Retry-After. Nothing answered 200 is lost by either.
func TestTwoOfThreeBrokersStopped(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	spooled := startGateway(t, c.brokers, topicPrefix(t)+".spool", true, []string{"--spool-dir", t.TempDir()})
	bare := startGateway(t, c.brokers, topicPrefix(t)+".bare", true, nil)
	c.waitFullISR(t, 30*time.Second, spooled.topic("message_open"), bare.topic("message_open"))

	ls, lb := newTally(), newTally()
	seqS, seqB := 0, 0
	for range 20 {
		ls.record(seqS, spooled.post(loadCallback(seqS)), 0)
		lb.record(seqB, bare.post(loadCallback(seqB)), 0)
		seqS, seqB = seqS+1, seqB+1
	}
	if len(ls.ok) != 20 || len(lb.ok) != 20 {
		t.Fatalf("before the outage: %d and %d of 20 answered 200", len(ls.ok), len(lb.ok))
	}
	// Stopped one after the other (controlled shutdown), the brokers leave
	// the ISR at once, while the controller quorum still has a majority.
	c.control(t, "stop-node", 2)
	c.control(t, "stop-node", 3)
	defer c.ensureAllUp(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); seqS = closedLoop(ctx, spooled, ls, seqS) }()
	go func() { defer wg.Done(); seqB = closedLoop(ctx, bare, lb, seqB) }()
	wg.Wait()
	cancel()
	duringS, duringB := seqS-20, seqB-20
	if !logHas(bare, "Not Enough Replicas") {
		t.Errorf("the gateway without a spool never saw NOT_ENOUGH_REPLICAS")
	}
	if lb.unavailable == 0 {
		t.Errorf("without a spool, no callback was answered 503 during the outage")
	}
	if len(ls.ok) != seqS {
		t.Errorf("with a spool, %d of %d callbacks answered 200 (503: %d, other %v)", len(ls.ok), seqS, ls.unavailable, ls.other)
	}
	appended := int(spooled.metric("emma_gateway_spool_appended_total"))
	if appended == 0 {
		t.Errorf("the spool took nothing while two brokers were down")
	}
	t.Logf("outage of 10 s: with a spool %d callbacks sent (%d spooled); without, %d sent (%d answered 503)", duringS, appended, duringB, lb.unavailable)

	var starts sync.WaitGroup
	for _, n := range []int{2, 3} {
		starts.Add(1)
		go func() { defer starts.Done(); c.control(t, "start-node", n) }()
	}
	starts.Wait()
	c.waitFullISR(t, 60*time.Second, spooled.topic("message_open"), bare.topic("message_open"))
	waitSpoolEmpty(t, spooled, 60*time.Second)
	if r := spooled.metric("emma_gateway_spool_replayed_total"); int(r) < appended {
		t.Errorf("replayed %v of %d spooled records", r, appended)
	}

	order := verify(t, c, "two of three brokers stopped, with a spool", spooled.topic("message_open"), ls, appended)
	if !slices.IsSorted(order) {
		t.Errorf("with a spool, Kafka holds the hot member's callbacks out of the order they were answered: %v", order)
	}
	verify(t, c, "two of three brokers stopped, without a spool", bare.topic("message_open"), lb, 0)
}

// TestRollingRestartUnderLoad restarts the three brokers one at a time
// (controlled shutdown, start, wait until every replica is in sync again)
// under an open-loop load of 200 callbacks a second to a gateway with a
// spool, as an operator upgrading the cluster would. Nothing is lost; the
// latency of the 200s is reported.
func TestRollingRestartUnderLoad(t *testing.T) {
	c := needCluster(t)
	c.ensureAllUp(t)
	g := startGateway(t, c.brokers, topicPrefix(t), true, []string{"--spool-dir", t.TempDir()})
	topic := g.topic("message_open")
	c.waitFullISR(t, 30*time.Second, topic)

	l := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); openLoop(ctx, g, l, 0, 120*200, 200) }()
	time.Sleep(2 * time.Second)
	start := time.Now()
	for n := 1; n <= 3; n++ {
		c.control(t, "stop-node", n)
		c.control(t, "start-node", n)
		c.waitFullISR(t, 60*time.Second, topic)
	}
	t.Logf("rolling restart of 3 brokers took %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	waitSpoolEmpty(t, g, 60*time.Second)
	appended := int(g.metric("emma_gateway_spool_appended_total"))
	t.Logf("rolling restart latency of the 200s: %s", l.percentiles())
	verify(t, c, "rolling restart under load (spool)", topic, l, appended)
	if l.unavailable > 0 {
		t.Errorf("%d callbacks answered 503 during a rolling restart with a spool", l.unavailable)
	}
}
