package emulator

import (
	"fmt"
	"time"
)

// Envelope is a callback as Emma sends it.
type Envelope struct {
	EventName string `json:"event_name"`
	// ResourceURL is at top level, as in real callbacks (the docs show it
	// inside data).
	ResourceURL string         `json:"resource_url,omitempty"`
	Data        map[string]any `json:"data"`
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
// timestamp at, as Emma writes it (@D:, no zone). n makes the ids of one
// call differ from the others'; fields of override replace or extend data.
func Payload(event string, account, n int64, at time.Time, override map[string]any) Envelope {
	member, mailing := baseMemberID+n, baseMailingID+n
	d := map[string]any{
		"account_id": account,
		"timestamp":  "@D:" + at.Format("2006-01-02T15:04:05"),
	}
	env := Envelope{EventName: event, Data: d}
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
	}
	for k, v := range override {
		d[k] = v
	}
	return env
}
