package emmaapi_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/emma-gateway/emma-gateway/internal/emmaapi"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://gw.example.com/webhooks/emma/abc", "https://gw.example.com/webhooks/emma/***"},
		{"https://gw.example.com/prefix/webhooks/emma/abc?x=1", "https://gw.example.com/prefix/webhooks/emma/***?x=1"},
		{"https://gw.example.com/webhooks/emma?token=abc", "https://gw.example.com/webhooks/emma?token=***"},
		{"https://u:pw@gw.example.com/hook", "https://u:***@gw.example.com/hook"},
		{"http://myemma.com", "http://myemma.com"},
	}
	for _, tt := range tests {
		if got := emmaapi.RedactURL(tt.in); got != tt.want {
			t.Errorf("emmaapi.RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGatewayIdentityIgnoresTokenQueryAndCase(t *testing.T) {
	same := []string{
		"https://gw.example.com/webhooks/emma/NEW",
		"https://GW.example.com/webhooks/emma/OLD",
		"https://gw.example.com/webhooks/emma?token=x",
		"https://gw.example.com/webhooks/emma/",
	}
	want, _ := emmaapi.GatewayIdentity(same[0])
	for _, s := range same {
		if got, ok := emmaapi.GatewayIdentity(s); !ok || got != want {
			t.Errorf("%s: %q, want %q", s, got, want)
		}
	}
	for _, s := range []string{"http://gw.example.com/webhooks/emma/NEW", "https://gw.example.com:8443/webhooks/emma/NEW", "https://gw.example.com/other/webhooks/emma/NEW", "https://crm.example.com/webhooks/emma/NEW"} {
		if got, _ := emmaapi.GatewayIdentity(s); got == want {
			t.Errorf("%s is not the same gateway", s)
		}
	}
}

// TestPlanTouchesOnlyThisGateway: keep what matches, update this gateway's
// registration with a rotated token, create what is missing, and with
// prune delete duplicates and unwanted events, never another URL's.
func TestPlanTouchesOnlyThisGateway(t *testing.T) {
	const target = "https://gw.example.com/webhooks/emma/NEW"
	current := []emmaapi.Webhook{
		{ID: 1, Event: "message_open", URL: target, Method: "POST"},
		{ID: 2, Event: "message_click", URL: "https://gw.example.com/webhooks/emma/OLD", Method: "POST"},
		{ID: 3, Event: "message_open", URL: "https://crm.example.com/hook", Method: "POST"},
		{ID: 4, Event: "member_signup", URL: target},
		{ID: 5, Event: "message_open", URL: "https://gw.example.com/webhooks/emma/OLD"},
	}
	got := emmaapi.Plan(current, target, "POST", []string{"message_click", "message_open", "mailing_finish"}, true)
	var steps []string
	for _, a := range got {
		steps = append(steps, a.Action+" "+a.Event+" "+map[bool]string{true: "new", false: "existing"}[a.WebhookID == 0])
	}
	want := []string{
		"update message_click existing",
		"keep message_open existing",
		"delete message_open existing", // the duplicate, id 5
		"create mailing_finish new",
		"delete member_signup existing", // not wanted
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	for _, a := range got {
		if a.WebhookID == 3 {
			t.Errorf("the plan touches another URL's registration: %+v", a)
		}
	}
	if noPrune := emmaapi.Plan(current, target, "POST", []string{"message_open"}, false); len(noPrune) != 1 || noPrune[0].Action != "keep" {
		t.Errorf("without prune: %+v", noPrune)
	}
}
