package events

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"testing"
)

// TestRegistryMatchesEmmaSeed reads Emma's webhook API page (copied into
// testdata) and checks that the registry holds exactly its 18 events, with
// the same ids and descriptions, plus member_add.
func TestRegistryMatchesEmmaSeed(t *testing.T) {
	page, err := os.ReadFile("testdata/emma_webhooks_api.txt")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"event_name": "([a-z_]+)",\s*"webhook_event_id": (\d+),\s*"description": "([^"]+)"`)
	matches := re.FindAllStringSubmatch(string(page), -1)
	if len(matches) != 18 {
		t.Fatalf("the seed lists %d events, want 18", len(matches))
	}
	for _, m := range matches {
		typ, ok := Lookup(m[1])
		if !ok {
			t.Errorf("event %s of the seed is not in the registry", m[1])
			continue
		}
		id, _ := strconv.Atoi(m[2])
		if typ.WebhookEventID != id || typ.Description != m[3] {
			t.Errorf("%s: registry has id %d %q, the seed %d %q", m[1], typ.WebhookEventID, typ.Description, id, m[3])
		}
	}
	all := Types()
	if len(all) != 19 {
		t.Fatalf("Types() has %d types, want 18 + member_add", len(all))
	}
	for i, typ := range all[:18] {
		if typ.WebhookEventID != i+1 {
			t.Errorf("Types()[%d] is %s (id %d), want webhook_event_id order", i, typ.Name, typ.WebhookEventID)
		}
	}
	if all[18].Name != "member_add" || !all[18].Documented {
		t.Errorf("last type is %+v, want documented member_add", all[18])
	}
	if _, ok := Lookup("member_birthday"); ok {
		t.Error("Lookup found an event Emma does not send")
	}
}

func TestEveryTypeDecodesIntoItsOwnPayload(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range Types() {
		p := typ.New()
		name := typeName(p)
		if seen[name] {
			t.Errorf("%s shares payload type %s", typ.Name, name)
		}
		seen[name] = true
		if _, ok := typ.info.fields["account_id"]; !ok {
			t.Errorf("%s has no account_id", typ.Name)
		}
	}
}

func typeName(p Payload) string { return reflect.TypeOf(p).Elem().Name() }
