package emmaapi

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// GatewayPath is where the gateway's token sits in its webhook URL
// (/webhooks/emma/{token}), possibly behind a path prefix.
const GatewayPath = "/webhooks/emma/"

// RedactURL hides the secrets a registered URL may carry: the gateway
// token (path segment or token parameter) and a userinfo password.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "***")
		}
	}
	if i := strings.Index(u.Path, GatewayPath); i >= 0 && len(u.Path) > i+len(GatewayPath) {
		u.Path = u.Path[:i+len(GatewayPath)] + "***"
		u.RawPath = ""
	}
	if q := u.Query(); q.Has("token") {
		q.Set("token", "***")
		u.RawQuery = q.Encode()
	}
	return strings.NewReplacer("%2A%2A%2A", "***", ":%2A%2A%2A@", ":***@").Replace(u.String())
}

// GatewayIdentity is what makes a registered URL this gateway's: scheme,
// host and path, without the token segment, the query and the userinfo,
// so that a URL with a rotated token (in the path or as ?token=) is the
// same gateway and is updated rather than registered a second time.
func GatewayIdentity(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", false
	}
	p := u.Path
	if i := strings.Index(p, GatewayPath); i >= 0 {
		p = p[:i+len(GatewayPath)-1]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimSuffix(p, "/"), true
}

// SyncAction is one step of a sync plan (Plan).
type SyncAction struct {
	// Action is create, update, delete or keep.
	Action    string `json:"action"`
	Event     string `json:"event"`
	WebhookID int64  `json:"webhook_id,omitempty"`
	Method    string `json:"method"`
	URL       string `json:"url"`
	// From is the registration an update or delete changes.
	From *Webhook `json:"from,omitempty"`
}

// Plan is the webhook sync planner: it computes what makes the registrations of gateway URL target
// match want: for each wanted event, keep a registration that already has
// the URL and method, else update one of this gateway's, else create one;
// with prune, delete this gateway's registrations of unwanted events and
// duplicates. Registrations of other URLs are never touched.
func Plan(current []Webhook, target, method string, want []string, prune bool) []SyncAction {
	id, _ := GatewayIdentity(target)
	ours := map[string][]Webhook{}
	for _, wh := range current {
		if wid, ok := GatewayIdentity(wh.URL); ok && wid == id {
			ours[wh.Event] = append(ours[wh.Event], wh)
		}
	}
	var plan []SyncAction
	wanted := map[string]bool{}
	for _, ev := range want {
		wanted[ev] = true
		regs := ours[ev]
		slices.SortFunc(regs, func(a, b Webhook) int { return cmp.Compare(a.ID, b.ID) })
		keep := slices.IndexFunc(regs, func(wh Webhook) bool {
			return wh.URL == target && strings.EqualFold(cmp.Or(wh.Method, http.MethodPost), method)
		})
		switch {
		case keep >= 0:
			plan = append(plan, SyncAction{Action: "keep", Event: ev, WebhookID: regs[keep].ID, Method: method, URL: target})
		case len(regs) > 0:
			keep = 0
			from := regs[0]
			plan = append(plan, SyncAction{Action: "update", Event: ev, WebhookID: from.ID, Method: method, URL: target, From: &from})
		default:
			plan = append(plan, SyncAction{Action: "create", Event: ev, Method: method, URL: target})
		}
		if prune {
			for i, wh := range regs {
				if i != keep {
					plan = append(plan, SyncAction{Action: "delete", Event: ev, WebhookID: wh.ID, Method: wh.Method, URL: wh.URL, From: &wh})
				}
			}
		}
	}
	if prune {
		for _, wh := range current {
			if wid, ok := GatewayIdentity(wh.URL); ok && wid == id && !wanted[wh.Event] {
				plan = append(plan, SyncAction{Action: "delete", Event: wh.Event, WebhookID: wh.ID, Method: wh.Method, URL: wh.URL, From: &wh})
			}
		}
	}
	return plan
}
