package events

import (
	"reflect"
	"slices"
)

// Type describes one kind of Emma webhook event.
type Type struct {
	// Name is Emma's event_name, e.g. "message_open".
	Name string
	// WebhookEventID is Emma's webhook_event_id (1..18). It is 0 for
	// member_add, which Emma sends but does not list.
	WebhookEventID int
	// Description is Emma's own description of the event.
	Description string
	// Documented reports whether Emma documents the payload's fields. The
	// fields of documented events are validated strictly (a wrong type is an
	// error); the others are decoded leniently: only account_id is required
	// and a field of an unexpected type is kept in Extra instead.
	Documented bool

	info *typeInfo
}

// New returns a new zero payload of this type.
func (t Type) New() Payload {
	return reflect.New(t.info.rtype).Interface().(Payload)
}

// The event types, in Emma's webhook_event_id order; member_add last.
var types = []Type{
	newType[MailingFinish]("mailing_finish", 1, "Fired when a mailing is finished.", true),
	newType[MailingStart]("mailing_start", 2, "Fired when a mailing starts.", false),
	newType[MemberSignup]("member_signup", 3, "Fired when a member signs up through a signup form.", true),
	newType[MessageOpen]("message_open", 4, "Fired when a message is opened.", true),
	newType[MessageClick]("message_click", 5, "Fired when a link in a message is clicked.", true),
	newType[MemberOptout]("member_optout", 6, "Fired when a member opts out.", true),
	newType[MessageShare]("message_share", 7, "Fired when a member shares a message.", true),
	newType[MessageShareClick]("message_share_click", 8, "Fired when a someone follows a link a member has shared.", false),
	newType[ImportFinish]("import_finish", 9, "Fired when a member import completes.", true),
	newType[MemberUpdate]("member_update", 10, "Fired when a member is updated.", false),
	newType[MemberDelete]("member_delete", 11, "Fired when a member is deleted.", false),
	newType[MemberAddToGroup]("member_add_to_group", 12, "Fired when a member(s) is added to a group(s).", false),
	newType[MemberRemoveFromGroup]("member_remove_from_group", 13, "Fired when a member(s) is removed from a group(s).", false),
	newType[GroupCreate]("group_create", 14, "Fired when a group is created.", false),
	newType[GroupDelete]("group_delete", 15, "Fired when a group is deleted.", false),
	newType[GroupUpdate]("group_update", 16, "Fired when a group is updated.", false),
	newType[MemberStatusUpdate]("member_status_update", 17, "Fired when a member's status changes.", false),
	newType[MessageForward]("message_forward", 18, "Fired when a message is forwarded.", true),
	newType[MemberAdd]("member_add", 0, "Fired when a member is added to the account (sent by Emma, not in its list of webhook events).", true),
}

// unrecognizedType decodes events whose name is not in types.
var unrecognizedType = newType[Unrecognized]("", 0, "", false)

var typesByName = func() map[string]Type {
	m := make(map[string]Type, len(types))
	for _, t := range types {
		m[t.Name] = t
	}
	return m
}()

func newType[P any, PP interface {
	*P
	Payload
}](name string, id int, desc string, documented bool) Type {
	info := newTypeInfo(reflect.TypeFor[P]())
	info.alloc = func() (*Event, Payload, *Time) {
		b := new(eventBlock[P])
		return &b.ev, PP(&b.p), &b.ts
	}
	return Type{
		Name:           name,
		WebhookEventID: id,
		Description:    desc,
		Documented:     documented,
		info:           info,
	}
}

// eventBlock holds an event with its payload and timestamp, so that
// decoding allocates them once.
type eventBlock[P any] struct {
	ev Event
	p  P
	ts Time
}

// Types returns every event type the gateway knows: Emma's 18 webhook events
// in webhook_event_id order, then member_add. The slice is a copy.
func Types() []Type { return slices.Clone(types) }

// Lookup returns the type named name (Emma's event_name), if known.
func Lookup(name string) (Type, bool) {
	t, ok := typesByName[name]
	return t, ok
}
