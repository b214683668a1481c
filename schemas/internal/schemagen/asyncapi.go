package schemagen

import (
	"sigs.k8s.io/yaml"

	"github.com/emma-gateway/emma-gateway/events"
	"github.com/emma-gateway/emma-gateway/events/kafkaevents"
	"github.com/emma-gateway/emma-gateway/schemas"
)

// AsyncAPIVersion is the version of the contract the AsyncAPI document
// describes; its major version changes only with a breaking change of a
// schema (see [Compatible]).
const AsyncAPIVersion = "1.0.0"

type obj = map[string]any

func ref(s string) obj { return obj{"$ref": s} }

// kafkaKey is the Kafka binding of every event message: SPEC section 4's key.
var kafkaKeyDoc = "The decimal id of the entity the event is about, the first present of member_id, mailing_id, import_id, member_group_id and account_id, so that one member's events stay in order."

// AsyncAPI returns the AsyncAPI 3.0 document of the gateway with its
// default topics (events/kafkaevents' defaults): the HTTP endpoint
// Emma calls, and one channel per Kafka topic with its key, headers and
// payload schema. The schemas are referenced by relative file name, so the
// document and the schemas are read together (from this directory or from
// the gateway's /schemas/).
func AsyncAPI() ([]byte, error) {
	channels, operations, messages := obj{}, obj{}, obj{}

	channels["webhook"] = obj{
		"address":     "/webhooks/emma",
		"title":       "Emma webhook endpoint",
		"description": "Emma calls it for every registered webhook event: POST with the JSON envelope as body (or a form field payload), or GET with the url-encoded envelope in the payload query parameter. The JSON may be laid out as Python's json.dumps writes it and preceded by a UTF-8 byte-order mark; its \"@D:\" dates are US Central local time. Also served at /webhooks/emma/{token}; the token may instead be a token query parameter or the HTTP Basic password.",
		"servers":     []any{ref("#/servers/http")},
		"messages":    obj{"callback": ref("#/components/messages/callback")},
	}
	for _, m := range []string{"POST", "GET"} {
		operations["receiveCallback"+m] = obj{
			"action":   "receive",
			"channel":  ref("#/channels/webhook"),
			"summary":  "Emma delivers a callback by " + m + "; answered 200 only once the event is durable.",
			"bindings": obj{"http": obj{"method": m}},
			"messages": []any{ref("#/channels/webhook/messages/callback")},
		}
	}
	messages["callback"] = obj{
		"name":        "callback",
		"title":       "Emma callback",
		"contentType": "application/json",
		"payload": obj{
			"type":     "object",
			"required": []any{"event_name"},
			"properties": obj{
				"event_name":   obj{"type": "string"},
				"resource_url": obj{"type": "string"},
				"data":         obj{"type": "object"},
			},
		},
	}

	eventChannel := func(id, topic, title, desc, schema string) {
		channels[id] = obj{
			"address":     topic,
			"title":       title,
			"description": desc,
			"servers":     []any{ref("#/servers/kafka")},
			"messages":    obj{id: ref("#/components/messages/" + id)},
		}
		operations["send_"+id] = obj{
			"action":   "send",
			"channel":  ref("#/channels/" + id),
			"summary":  "The gateway publishes to " + topic + " with acks from all in-sync replicas.",
			"messages": []any{ref("#/channels/" + id + "/messages/" + id)},
		}
		messages[id] = obj{
			"name":        id,
			"title":       title,
			"summary":     desc,
			"contentType": "application/json",
			"headers":     ref("./" + schemas.CloudEventsHeaders + ".json"),
			"payload":     ref("./" + schema + ".json"),
			"bindings": obj{"kafka": obj{
				"key":            obj{"type": "string", "pattern": "^[0-9]+$", "description": kafkaKeyDoc},
				"bindingVersion": "0.5.0",
			}},
		}
	}
	for _, t := range events.Types() {
		eventChannel(t.Name, kafkaevents.Topic(kafkaevents.DefaultTopicTemplate, t.Name), t.Name, t.Description, t.Name)
	}
	eventChannel(schemas.Unrecognized, kafkaevents.DefaultUnrecognizedTopic, "unrecognized events", "Callbacks whose event_name the gateway does not know, normalized as far as possible.", schemas.Unrecognized)

	channels[schemas.DeadLetter] = obj{
		"address":     kafkaevents.DefaultDeadLetterTopic,
		"title":       "dead letters",
		"description": "Callbacks the gateway rejected (400 or 422), raw, with the reason in headers.",
		"servers":     []any{ref("#/servers/kafka")},
		"messages":    obj{schemas.DeadLetter: ref("#/components/messages/" + schemas.DeadLetter)},
	}
	operations["send_"+schemas.DeadLetter] = obj{
		"action":   "send",
		"channel":  ref("#/channels/" + schemas.DeadLetter),
		"summary":  "The gateway publishes every rejected request to " + kafkaevents.DefaultDeadLetterTopic + ".",
		"messages": []any{ref("#/channels/" + schemas.DeadLetter + "/messages/" + schemas.DeadLetter)},
	}
	messages[schemas.DeadLetter] = obj{
		"name":        schemas.DeadLetter,
		"title":       "dead letter",
		"contentType": "application/octet-stream",
		"headers":     ref("./" + schemas.DeadLetter + ".json"),
		"payload":     obj{"type": "string", "description": "The raw request payload, byte for byte (it may not be JSON)."},
		"bindings": obj{"kafka": obj{
			"key":            obj{"type": "string", "description": "A hash of the raw payload."},
			"bindingVersion": "0.5.0",
		}},
	}

	doc := obj{
		"asyncapi": "3.0.0",
		"info": obj{
			"title":       "emma-gateway",
			"version":     AsyncAPIVersion,
			"description": "Receives Emma (email marketing) webhook callbacks over HTTP and publishes each, typed and normalized, to Kafka. Topics are those of the default configuration (EMMA_GATEWAY_TOPIC_TEMPLATE emma.{event}); a routes file can send events to more topics, with the same messages. Payload schemas are JSON Schema draft 2020-12.",
		},
		"defaultContentType": "application/json",
		"servers": obj{
			"http":  obj{"host": "localhost:8080", "protocol": "http", "description": "The gateway's HTTP listener (--addr, EMMA_GATEWAY_ADDR)."},
			"kafka": obj{"host": "localhost:9092", "protocol": "kafka", "description": "The Kafka cluster (EMMA_GATEWAY_KAFKA_BROKERS), or the gateway's embedded broker in development."},
		},
		"channels":   channels,
		"operations": operations,
		"components": obj{"messages": messages},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated by go generate ./schemas from the Go types in events/ and the default topics of events/kafkaevents; do not edit.\n"), b...), nil
}
