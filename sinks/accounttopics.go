package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// accountTopics bounds the {account} topics the sink creates at run time
// (SPEC section 4): the account id comes from the callback, so without a
// bound any holder of a token not bound to accounts could make the gateway
// create one topic per made-up id. Up to max distinct topics are admitted,
// first come first served, for the life of the process; a copy for any
// other goes to the event's template topic instead, with a header naming
// the topic it was meant for, so that nothing accepted is lost.
type accountTopics struct {
	max int
	log *slog.Logger

	refused prometheus.Counter
	gauge   prometheus.GaugeFunc

	mu       sync.Mutex
	admitted map[string]struct{}
	// Refusals are logged at most once a minute (the first at once), with
	// the count since the last line: a flood of made-up ids must not become
	// a flood of log lines.
	lastWarn time.Time
	unlogged int
}

// warnEvery is the least time between two log lines about refusals.
const warnEvery = time.Minute

func newAccountTopics(maxTopics int, log *slog.Logger) *accountTopics {
	a := &accountTopics{max: maxTopics, log: log, admitted: map[string]struct{}{}}
	a.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "emma_gateway_account_topics_refused_total",
		Help: "Copies sent to their event's template topic because the {account} topic a route named was beyond --max-account-topics.",
	})
	a.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "emma_gateway_account_topics",
		Help: "Distinct {account} topics this process has written (and created), at most --max-account-topics.",
	}, func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.admitted))
	})
	return a
}

// bound replaces each per-account destination beyond the bound by the
// event's template topic, merged with a destination already there.
func (a *accountTopics) bound(dests []Destination, fallback string) []Destination {
	var refused []string
	out := dests[:0:0]
	for _, d := range dests {
		if !d.PerAccount || a.admit(d.Topic) {
			out = append(out, d)
			continue
		}
		refused = append(refused, d.Topic)
	}
	if len(refused) == 0 {
		return dests
	}
	a.refused.Add(float64(len(refused)))
	a.warn(refused)
	i := slices.IndexFunc(out, func(d Destination) bool { return d.Topic == fallback })
	if i < 0 {
		out = append(out, Destination{Topic: fallback, Key: KeyDefault, ContentMode: ContentBinary})
		i = len(out) - 1
	}
	out[i].IntendedTopics = refused
	return out
}

// seed admits the topics already in the cluster that a rule without
// accounts names, so that the bound holds across restarts: a gateway that
// restarts (a rolling deploy, a crash loop) does not create another max
// topics each time. Topics that exist are always admitted, even beyond
// max (they cost nothing to write); only creating new ones is bounded.
func (a *accountTopics) seed(ctx context.Context, client *kafka.Client, r *Routes) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{}) // every topic
	if err != nil {
		return fmt.Errorf("listing the topics made for accounts: %w", err)
	}
	re := r.accountTopicsRE()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range md.Topics {
		if t.Error == nil && re.MatchString(t.Name) {
			a.admitted[t.Name] = struct{}{}
		}
	}
	return nil
}

func (a *accountTopics) admit(topic string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.admitted[topic]; ok {
		return true
	}
	if len(a.admitted) >= a.max {
		return false
	}
	a.admitted[topic] = struct{}{}
	return true
}

func (a *accountTopics) warn(refused []string) {
	a.mu.Lock()
	a.unlogged += len(refused)
	now := time.Now()
	if !a.lastWarn.IsZero() && now.Sub(a.lastWarn) < warnEvery {
		a.mu.Unlock()
		return
	}
	n := a.unlogged
	a.lastWarn, a.unlogged = now, 0
	a.mu.Unlock()
	a.log.Warn("the bound on {account} topics created at run time is reached: copies go to their event's template topic, with header emma_intended_topic (raise --max-account-topics, or list the accounts in the route)",
		"max_account_topics", a.max, "refused_since_last_warning", n, "latest_refused_topic", refused[len(refused)-1])
}

// accountTopicsRE matches the names the {account} topics of rules without
// accounts can take: {event} as a known event name, {account} as a decimal
// id.
func (r *Routes) accountTopicsRE() *regexp.Regexp {
	var names []string
	for _, n := range eventNames() {
		names = append(names, regexp.QuoteMeta(n))
	}
	event := "(?:" + strings.Join(names, "|") + ")"
	var alts []string
	all := r.Routes
	if r.Default != nil {
		all = append(slices.Clone(all), *r.Default)
	}
	for _, rt := range all {
		if len(rt.Accounts) > 0 {
			continue
		}
		for _, t := range rt.Topics {
			if !strings.Contains(t, AccountPlaceholder) {
				continue
			}
			q := regexp.QuoteMeta(t)
			q = strings.ReplaceAll(q, regexp.QuoteMeta(kafkaevents.EventPlaceholder), event)
			q = strings.ReplaceAll(q, regexp.QuoteMeta(AccountPlaceholder), "-?[0-9]+")
			alts = append(alts, q)
		}
	}
	if len(alts) == 0 {
		return regexp.MustCompile(`^\b\B$`) // matches nothing
	}
	return regexp.MustCompile("^(?:" + strings.Join(alts, "|") + ")$")
}
