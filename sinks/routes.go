package sinks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
)

// AccountPlaceholder is replaced by the event's account id in route topics.
const AccountPlaceholder = "{account}"

// Content modes of a route (CloudEvents Kafka protocol binding).
const (
	// ContentBinary puts the normalized event in the value and the
	// CloudEvents attributes in ce_* headers. The default.
	ContentBinary = "binary"
	// ContentStructured puts a whole CloudEvents JSON envelope
	// (application/cloudevents+json) in the value, the event as its data.
	ContentStructured = "structured"
)

// KeyDefault is the key field that picks SPEC section 4's key: the first
// present of member_id, mailing_id, import_id, group id and account_id.
const KeyDefault = "default"

// keyFields are the key fields a route may name besides KeyDefault.
var keyFields = []string{"member_id", "mailing_id", "import_id", "member_group_id", "account_id", "event_id"}

// Route is one rule of a routes file.
type Route struct {
	// Events are event names or globs ("message_*", "*") the rule matches.
	Events []string `yaml:"events"`
	// Accounts, when set, restrict the rule to these account ids.
	Accounts []int64 `yaml:"accounts"`
	// Topics are the destinations; {event} and {account} expand.
	Topics []string `yaml:"topics"`
	// Key names the field whose value is the message key: member_id,
	// mailing_id, import_id, member_group_id, account_id, event_id, or
	// "default". When the event lacks that field, the default key is used.
	Key string `yaml:"key"`
	// ContentMode is "binary" (default) or "structured".
	ContentMode string `yaml:"content_mode"`
	// Drop discards matching events on purpose (counted, never silent).
	Drop bool `yaml:"drop"`
}

// Routes decides where each event goes. Every rule whose events and
// accounts match contributes its topics (all-match: a firehose rule and a
// per-account rule both apply); a matching drop rule discards the event
// whatever else matches; when no rule matches, Default applies.
type Routes struct {
	Routes []Route `yaml:"routes"`
	// Default is used for events no rule matches. Default: the topics of
	// Config.TopicTemplate, binary mode.
	Default *Route `yaml:"default"`
}

// Destination is one copy of an event: where it goes and how.
type Destination struct {
	Topic       string
	Key         string // the key field
	ContentMode string
	// PerAccount marks a topic named with {account} by a rule that lists
	// no accounts: it cannot be created in advance, and counts against
	// Config.MaxAccountTopics. (A rule that lists its accounts names a
	// known set of topics: they are created at start.)
	PerAccount bool
	// IntendedTopics, on a copy sent to the event's template topic because
	// Config.MaxAccountTopics was reached, are the {account} topics the
	// routes named for it (the kafkaevents.HeaderIntendedTopic header).
	IntendedTopics []string
}

// ParseRoutes reads a routes file (YAML), rejecting unknown fields, and
// validates it, reporting every problem at once.
func ParseRoutes(data []byte) (*Routes, error) {
	var r Routes
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadRoutes reads and validates the routes file at path.
func LoadRoutes(file string) (*Routes, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	r, err := ParseRoutes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// Validate reports every problem of the routes at once.
func (r *Routes) Validate() error {
	var errs []error
	if len(r.Routes) == 0 && r.Default == nil {
		errs = append(errs, errors.New("routes: no routes and no default"))
	}
	for i, rt := range r.Routes {
		errs = append(errs, rt.validate(fmt.Sprintf("routes[%d]", i), true)...)
	}
	if r.Default != nil {
		if len(r.Default.Events) > 0 || len(r.Default.Accounts) > 0 {
			errs = append(errs, errors.New("routes: default: events and accounts do not apply to the default"))
		}
		errs = append(errs, r.Default.validate("default", false)...)
	}
	return errors.Join(errs...)
}

func (rt Route) validate(where string, needEvents bool) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("routes: %s: "+format, append([]any{where}, args...)...))
	}
	if needEvents && len(rt.Events) == 0 {
		bad("no events (use \"*\" for all)")
	}
	for _, pat := range rt.Events {
		if _, err := path.Match(pat, ""); err != nil {
			bad("event pattern %q is not a valid glob", pat)
		} else if !strings.ContainsAny(pat, `*?[\`) {
			if _, ok := events.Lookup(pat); !ok {
				bad("unknown event %q (known: %s)", pat, strings.Join(eventNames(), ", "))
			}
		} else if !slices.ContainsFunc(eventNames(), func(n string) bool { ok, _ := path.Match(pat, n); return ok }) {
			bad("event pattern %q matches no known event", pat)
		}
	}
	for _, a := range rt.Accounts {
		if a <= 0 {
			bad("account id %d is not positive", a)
		}
	}
	switch {
	case rt.Drop && len(rt.Topics) > 0:
		bad("a drop rule has no topics")
	case !rt.Drop && len(rt.Topics) == 0:
		bad("no topics (or drop: true)")
	}
	for _, t := range rt.Topics {
		sample := strings.NewReplacer(kafkaevents.EventPlaceholder, "message_open", AccountPlaceholder, "1743199").Replace(t)
		if !topicRE.MatchString(sample) || strings.ContainsAny(sample, "{}") {
			bad("topic %q does not make legal topic names (placeholders: {event}, {account})", t)
		}
	}
	if rt.Key != "" && rt.Key != KeyDefault && !slices.Contains(keyFields, rt.Key) {
		bad("key %q is not one of %s, %s", rt.Key, KeyDefault, strings.Join(keyFields, ", "))
	}
	if rt.ContentMode != "" && rt.ContentMode != ContentBinary && rt.ContentMode != ContentStructured {
		bad("content_mode %q is not %s or %s", rt.ContentMode, ContentBinary, ContentStructured)
	}
	return errs
}

func eventNames() []string {
	var names []string
	for _, t := range events.Types() {
		names = append(names, t.Name)
	}
	return names
}

func (rt Route) matches(event string, account int64) bool {
	if len(rt.Accounts) > 0 && !slices.Contains(rt.Accounts, account) {
		return false
	}
	for _, pat := range rt.Events {
		if ok, _ := path.Match(pat, event); ok {
			return true
		}
	}
	return false
}

func (rt Route) destinations(event string, account int64, out []Destination) []Destination {
	key, mode := rt.Key, rt.ContentMode
	if key == "" {
		key = KeyDefault
	}
	if mode == "" {
		mode = ContentBinary
	}
	acct := strconv.FormatInt(account, 10)
	for _, t := range rt.Topics {
		topic := strings.NewReplacer(kafkaevents.EventPlaceholder, event, AccountPlaceholder, acct).Replace(t)
		if !slices.ContainsFunc(out, func(d Destination) bool { return d.Topic == topic }) {
			perAccount := strings.Contains(t, AccountPlaceholder) && len(rt.Accounts) == 0
			out = append(out, Destination{Topic: topic, Key: key, ContentMode: mode, PerAccount: perAccount})
		}
	}
	return out
}

// Route returns the destinations of a recognized event named event from
// account, or dropped when a drop rule matches. defaultTopic is the topic
// of the gateway's template, used when no rule matches and the file has no
// default.
func (r *Routes) Route(event string, account int64, defaultTopic string) (dests []Destination, dropped bool) {
	for _, rt := range r.Routes {
		if !rt.matches(event, account) {
			continue
		}
		if rt.Drop {
			return nil, true
		}
		dests = rt.destinations(event, account, dests)
	}
	if len(dests) > 0 {
		return dests, false
	}
	if r.Default != nil {
		if r.Default.Drop {
			return nil, true
		}
		return r.Default.destinations(event, account, nil), false
	}
	return []Destination{{Topic: defaultTopic, Key: KeyDefault, ContentMode: ContentBinary}}, false
}

// StaticTopics returns the topics the routes can name that are known in
// advance: they are created at start. That includes the {account} topics
// of a rule that lists its accounts; those of a rule that does not are
// created on first use, within Config.MaxAccountTopics.
func (r *Routes) StaticTopics() []string {
	var ts []string
	all := append(slices.Clone(r.Routes), Route{})
	if r.Default != nil {
		all[len(all)-1] = *r.Default
		all[len(all)-1].Events = []string{"*"}
	}
	for _, rt := range all {
		if rt.Drop {
			continue
		}
		accounts := rt.Accounts
		if len(accounts) == 0 {
			accounts = []int64{0}
		}
		for _, t := range rt.Topics {
			if strings.Contains(t, AccountPlaceholder) && len(rt.Accounts) == 0 {
				continue
			}
			for _, name := range eventNames() {
				for _, acct := range accounts {
					if _, dropped := r.Route(name, acct, ""); dropped || !rt.matches(name, acct) {
						continue
					}
					ts = append(ts, strings.NewReplacer(kafkaevents.EventPlaceholder, name, AccountPlaceholder, strconv.FormatInt(acct, 10)).Replace(t))
				}
			}
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// perAccount reports whether a rule names {account} topics without listing
// its accounts: topics created on first use, bounded by
// Config.MaxAccountTopics. False for nil routes.
func (r *Routes) perAccount() bool {
	if r == nil {
		return false
	}
	all := r.Routes
	if r.Default != nil {
		all = append(slices.Clone(all), *r.Default)
	}
	for _, rt := range all {
		if len(rt.Accounts) == 0 && slices.ContainsFunc(rt.Topics, func(t string) bool { return strings.Contains(t, AccountPlaceholder) }) {
			return true
		}
	}
	return false
}
