package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emma-gateway/emma-gateway/events"
)

// Envelope is a callback as Emma sends it. Encode it with [Envelope.JSON]
// for Emma's byte layout; encoding/json would write it compact, keys
// sorted.
type Envelope struct {
	EventName string `json:"event_name"`
	// ResourceURL is at top level, as in real callbacks (the docs show it
	// inside data).
	ResourceURL string         `json:"resource_url,omitempty"`
	Data        map[string]any `json:"data"`
	// order is the order of Data's keys in [Envelope.JSON]; keys not in it
	// follow, sorted.
	order []string
}

// JSON returns the callback as Emma's software (Python) writes it:
// json.dumps with its default separators ", " and ": " and ensure_ascii
// (non-ASCII as \u escapes, no HTML escaping), the envelope's keys in the
// order of the captured real callback (event_name, resource_url, data) and
// data's keys in the order Payload chose (see there).
func (e Envelope) JSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"event_name": `)
	if err := writePy(&b, e.EventName); err != nil {
		return nil, err
	}
	if e.ResourceURL != "" {
		b.WriteString(`, "resource_url": `)
		if err := writePy(&b, e.ResourceURL); err != nil {
			return nil, err
		}
	}
	b.WriteString(`, "data": {`)
	keys := slices.Clone(e.order)
	var rest []string
	for k := range e.Data {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	n := 0
	for _, k := range append(keys, rest...) {
		v, ok := e.Data[k]
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		if err := writePy(&b, k); err != nil {
			return nil, err
		}
		b.WriteString(": ")
		if err := writePy(&b, v); err != nil {
			return nil, err
		}
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

// writePy writes v as Python's json.dumps does: Go's encoding (maps with
// sorted keys) without HTML escaping, re-laid with ", " and ": " outside
// strings and non-ASCII characters as \u escapes (UTF-16, as Python).
func writePy(b *bytes.Buffer, v any) error {
	var compact bytes.Buffer
	enc := json.NewEncoder(&compact)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	in := bytes.TrimSuffix(compact.Bytes(), []byte("\n"))
	inString, escaped := false, false
	for _, r := range string(in) {
		switch {
		case inString && escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case r == '"':
			inString = !inString
		case !inString && (r == ',' || r == ':'):
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		if r < utf8.RuneSelf && r != 0x7f { // Python escapes DEL too
			b.WriteRune(r)
			continue
		}
		r1, r2 := utf16.EncodeRune(r)
		if r1 == utf8.RuneError {
			fmt.Fprintf(b, `\u%04x`, r)
			continue
		}
		fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
	}
	return nil
}

// Base ids of generated payloads: all above 2^32, as Emma's are, so that a
// receiver storing them in 32 bits fails visibly.
const (
	baseMemberID  int64 = 6160010000
	baseMailingID int64 = 5012340000
	baseLinkID    int64 = 7000000000
	baseImportID  int64 = 9000000000
	baseGroupID   int64 = 4300000000
	baseFormID    int64 = 4400000000
)

// Payload returns a realistic callback of event for account, with the
// timestamp at, as Emma writes it: @D: and no zone, in Emma's clock, US
// Central local time (events.EmmaTimezone; an at already in that zone
// spares loading it, some 17 µs, on each call). n makes the ids of one call
// differ from the others'; fields of override replace or extend data.
// Optional ids Emma leaves out are null, as in real callbacks. Data's key
// order is the captured real callback's for member_add (signup_form_id,
// timestamp, group_ids, account_id, member_id); for the others, whose real
// order is not known, it is the documentation's field order.
func Payload(event string, account, n int64, at time.Time, override map[string]any) Envelope {
	member, mailing := baseMemberID+n, baseMailingID+n
	d := map[string]any{
		"account_id": account,
		"timestamp":  "@D:" + inEmmaClock(at).Format("2006-01-02T15:04:05"),
	}
	env := Envelope{EventName: event, Data: d, order: []string{"account_id", "member_id", "member_group_id", "group_name", "mailing_id",
		"signup_form_id", "subject", "link_id", "network", "import_id", "group_ids", "contact_count", "status", "resource_url", "timestamp"}}
	memberURL := fmt.Sprintf("https://api.e2ma.net/%d/members/%d", account, member)
	mailingFields := func() {
		d["mailing_id"], d["subject"] = mailing, fmt.Sprintf("Emulated mailing %d", n)
	}
	switch event {
	case "mailing_finish", "mailing_start":
		mailingFields()
		env.ResourceURL = fmt.Sprintf("https://api.e2ma.net/%d/mailings/%d", account, mailing)
	case "member_signup":
		d["member_id"], d["signup_form_id"], d["mailing_id"] = member, baseFormID+1, nil
		env.ResourceURL = memberURL
	case "message_open", "member_optout", "message_forward":
		d["member_id"] = member
		mailingFields()
	case "message_click":
		d["member_id"], d["link_id"] = member, baseLinkID+n
		mailingFields()
	case "message_share", "message_share_click":
		d["member_id"], d["network"] = member, "facebook"
		mailingFields()
	case "import_finish":
		imp := baseImportID + n
		d["import_id"], d["group_ids"], d["contact_count"] = imp, []int64{baseGroupID + 1}, 1250
		d["resource_url"] = fmt.Sprintf("https://api.e2ma.net/%d/members/imports/%d", account, imp)
	case "member_update", "member_delete":
		d["member_id"] = member
		env.ResourceURL = memberURL
	case "member_add_to_group", "member_remove_from_group":
		d["member_id"], d["group_ids"] = member, []int64{baseGroupID + 1, baseGroupID + 2}
		env.ResourceURL = memberURL
	case "group_create", "group_delete", "group_update":
		d["member_group_id"], d["group_name"] = baseGroupID+n, fmt.Sprintf("Emulated group %d", n)
	case "member_status_update":
		d["member_id"], d["status"] = member, "opt-out"
		env.ResourceURL = memberURL
	case "member_add":
		d["member_id"], d["signup_form_id"], d["group_ids"] = member, nil, []int64{baseGroupID + 1}
		env.ResourceURL = memberURL
		env.order = []string{"signup_form_id", "timestamp", "group_ids", "account_id", "member_id"}
	}
	for k, v := range override {
		d[k] = v
	}
	return env
}

// inEmmaClock is at in Emma's zone.
func inEmmaClock(at time.Time) time.Time {
	if at.Location().String() == events.EmmaTimezone {
		return at
	}
	return at.In(emmaClock())
}

// emmaClock is Emma's zone. events links time/tzdata, so it always loads.
func emmaClock() *time.Location {
	loc, err := time.LoadLocation(events.EmmaTimezone)
	if err != nil {
		panic("emulator: " + events.EmmaTimezone + " does not load although time/tzdata is linked: " + err.Error())
	}
	return loc
}
