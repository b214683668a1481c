package events

// Payload is the typed data of one callback: a pointer to one of the structs
// of this file. Use a type switch to reach the fields of a particular event.
type Payload interface {
	base() *Base
}

// Base holds the fields every Emma callback carries in its data object.
type Base struct {
	// AccountID is the Emma account the event happened in.
	AccountID ID `json:"account_id" validate:"required"`
	// Timestamp is when the event happened, as Emma reports it. Documented
	// events require it; for the others it is null when Emma sends none.
	Timestamp *Time `json:"timestamp"`
}

func (b *Base) base() *Base { return b }

// MailingFinish is mailing_finish: a mailing has finished sending.
type MailingFinish struct {
	Base
	MailingID ID     `json:"mailing_id" validate:"required"`
	Subject   string `json:"subject"`
}

// MailingStart is mailing_start: a mailing has started sending. Emma does not
// document its fields; they are decoded like mailing_finish, leniently.
type MailingStart struct {
	Base
	MailingID *ID     `json:"mailing_id"`
	Subject   *string `json:"subject"`
}

// MemberSignup is member_signup: a member signed up through a signup form.
type MemberSignup struct {
	Base
	MemberID     ID  `json:"member_id" validate:"required"`
	MailingID    *ID `json:"mailing_id"`
	SignupFormID *ID `json:"signup_form_id"`
}

// MessageOpen is message_open: a member opened a message.
type MessageOpen struct {
	Base
	MemberID  ID     `json:"member_id" validate:"required"`
	MailingID ID     `json:"mailing_id" validate:"required"`
	Subject   string `json:"subject"`
}

// MessageClick is message_click: a member clicked a link in a message.
type MessageClick struct {
	Base
	MemberID  ID     `json:"member_id" validate:"required"`
	MailingID ID     `json:"mailing_id" validate:"required"`
	Subject   string `json:"subject"`
	LinkID    ID     `json:"link_id" validate:"required"`
}

// MemberOptout is member_optout: a member opted out. The opt-out may come
// from a mailing (mailing_id and subject) or not, so those are optional.
type MemberOptout struct {
	Base
	MemberID  ID      `json:"member_id" validate:"required"`
	MailingID *ID     `json:"mailing_id"`
	Subject   *string `json:"subject"`
}

// MessageShare is message_share: a member shared a message on a network.
type MessageShare struct {
	Base
	MemberID  ID     `json:"member_id" validate:"required"`
	MailingID ID     `json:"mailing_id" validate:"required"`
	Subject   string `json:"subject"`
	Network   string `json:"network" validate:"required"`
}

// MessageShareClick is message_share_click: someone followed a link a member
// shared. Undocumented by Emma; decoded like message_share, leniently.
type MessageShareClick struct {
	Base
	MemberID  *ID     `json:"member_id"`
	MailingID *ID     `json:"mailing_id"`
	Subject   *string `json:"subject"`
	Network   *string `json:"network"`
}

// ImportFinish is import_finish: a member import completed. Its resource_url
// is carried by the [Event].
type ImportFinish struct {
	Base
	ImportID     ID     `json:"import_id" validate:"required"`
	GroupIDs     []ID   `json:"group_ids"`
	ContactCount *Count `json:"contact_count"`
}

// MemberUpdate is member_update (undocumented, lenient).
type MemberUpdate struct {
	Base
	MemberID *ID `json:"member_id"`
}

// MemberDelete is member_delete (undocumented, lenient).
type MemberDelete struct {
	Base
	MemberID *ID `json:"member_id"`
}

// MemberAddToGroup is member_add_to_group: members were added to groups
// (undocumented, lenient).
type MemberAddToGroup struct {
	Base
	MemberID *ID  `json:"member_id"`
	GroupIDs []ID `json:"group_ids"`
}

// MemberRemoveFromGroup is member_remove_from_group: members were removed
// from groups (undocumented, lenient).
type MemberRemoveFromGroup struct {
	Base
	MemberID *ID  `json:"member_id"`
	GroupIDs []ID `json:"group_ids"`
}

// Group holds the fields of the group_* events. Emma's API names a group's id
// member_group_id; group_id is accepted as well and normalized to it.
type Group struct {
	MemberGroupID *ID     `json:"member_group_id" alias:"group_id"`
	GroupName     *string `json:"group_name"`
}

// GroupCreate is group_create (undocumented, lenient).
type GroupCreate struct {
	Base
	Group
}

// GroupDelete is group_delete (undocumented, lenient).
type GroupDelete struct {
	Base
	Group
}

// GroupUpdate is group_update (undocumented, lenient).
type GroupUpdate struct {
	Base
	Group
}

// MemberStatusUpdate is member_status_update: a member's status changed
// (undocumented, lenient).
type MemberStatusUpdate struct {
	Base
	MemberID *ID     `json:"member_id"`
	Status   *string `json:"status"`
}

// MessageForward is message_forward: a member forwarded a message.
type MessageForward struct {
	Base
	MemberID  ID     `json:"member_id" validate:"required"`
	MailingID ID     `json:"mailing_id" validate:"required"`
	Subject   string `json:"subject"`
}

// MemberAdd is member_add: a member was added to the account. Emma sends it
// although its list of webhook events does not name it.
type MemberAdd struct {
	Base
	MemberID     ID   `json:"member_id" validate:"required"`
	SignupFormID *ID  `json:"signup_form_id"`
	GroupIDs     []ID `json:"group_ids"`
}

// Unrecognized is the payload of an event whose name the gateway does not
// know. Only account_id and timestamp are read (when present and well
// formed); every other field is kept in [Event.Extra].
type Unrecognized struct {
	Base
}
