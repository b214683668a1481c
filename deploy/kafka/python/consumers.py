"""Consumers of the gateway's topics from another ecosystem, run by the Go
integration suite (internal/kafkait) against the Apache Kafka cluster.

It reads the binary-mode event topics and a structured-mode route topic with
confluent-kafka (librdkafka), and checks that
  * the CloudEvents SDK's Kafka binding turns each binary-mode message into a
    CloudEvent whose id, source, type, subject, time and dataschema agree with
    the value, and each structured-mode message into one whose data is the
    event;
  * each value validates against schemas/{event_name}.json (Draft 2020-12,
    formats asserted);
  * librdkafka's murmur2_random partitioner puts each key on the partition
    the gateway chose (by producing the keys to a topic of as many
    partitions).
It prints one JSON summary line and exits 0 only if every check passed.
"""

import argparse
import datetime
import json
import pathlib
import sys
import time
import uuid

from cloudevents.core.bindings import kafka as cekafka
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
import jsonschema

SUBJECT_FIELDS = [  # SPEC: the first present names the event's subject and key
    ("member_id", "member"),
    ("mailing_id", "mailing"),
    ("import_id", "import"),
    ("member_group_id", "group"),
    ("account_id", "account"),
]


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def read_all(brokers, topics, want, timeout):
    """Every message of topics, from the start, until want were read."""
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "emma-gateway-it-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe(topics)
    msgs, deadline = [], time.monotonic() + timeout
    try:
        while len(msgs) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise RuntimeError(f"consume: {m.error()}")
            msgs.append(m)
    finally:
        c.close()
    return msgs


def check_binary(m, schemas, errors):
    headers = {k: v for k, v in (m.headers() or [])}
    ev = cekafka.from_binary_event(cekafka.KafkaMessage(headers=headers, key=m.key(), value=m.value()))
    value = ev.get_data()
    where = f"{m.topic()}/{m.partition()}@{m.offset()}"
    if not isinstance(value, dict):
        errors.append(f"{where}: data is {type(value).__name__}, not the event object")
        return None
    name = value.get("event_name")
    recognized = f"com.myemma.{name}" == ev.get_type()
    schema_name = name if (schemas / f"{name}.json").exists() else "unrecognized"
    schema = json.loads((schemas / f"{schema_name}.json").read_text())
    want = {
        "id": value["event_id"],
        "source": f"https://api.e2ma.net/{value['account_id']}",
        "type": f"com.myemma.{name}",
        "dataschema": schema["$id"],
    }
    got = {"id": ev.get_id(), "source": ev.get_source(), "type": ev.get_type(), "dataschema": ev.get_dataschema()}
    if got != want:
        errors.append(f"{where}: attributes {got}, value says {want}")
    subject = next((f"{kind}/{value[f]}" for f, kind in SUBJECT_FIELDS if value.get(f) is not None), None)
    if ev.get_subject() != subject:
        errors.append(f"{where}: subject {ev.get_subject()!r}, value says {subject!r}")
    if m.key().decode() != subject.split("/")[1]:
        errors.append(f"{where}: key {m.key()!r}, subject {subject!r}")
    stamp = value.get("timestamp") or value.get("received_at")
    if ev.get_time() != parse_time(stamp):
        errors.append(f"{where}: time {ev.get_time()}, value says {stamp}")
    if ev.get_datacontenttype() != "application/json":
        errors.append(f"{where}: datacontenttype {ev.get_datacontenttype()!r}")
    validate(value, schema, where, errors)
    return recognized


def check_structured(m, schemas, errors):
    headers = {k: v for k, v in (m.headers() or [])}
    where = f"{m.topic()}/{m.partition()}@{m.offset()}"
    if headers.get("content-type", b"").split(b";")[0] != b"application/cloudevents+json":
        errors.append(f"{where}: content-type {headers.get('content-type')!r}")
    ev = cekafka.from_structured_event(cekafka.KafkaMessage(headers=headers, key=m.key(), value=m.value()))
    value = ev.get_data()
    name = value["event_name"]
    schema = json.loads((schemas / f"{name}.json").read_text())
    got = (ev.get_id(), ev.get_type(), ev.get_dataschema(), ev.get_source())
    want = (value["event_id"], f"com.myemma.{name}", schema["$id"], f"https://api.e2ma.net/{value['account_id']}")
    if got != want:
        errors.append(f"{where}: structured attributes {got}, value says {want}")
    validate(value, schema, where, errors)


def validate(value, schema, where, errors):
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for e in v.iter_errors(value):
        errors.append(f"{where}: schema {schema['$id']}: {e.message} at {list(e.absolute_path)}")


def check_partitions(brokers, msgs, topic, partitions, errors):
    """Produce each key with librdkafka's murmur2_random partitioner to a topic
    of the same partition count; each must land where the gateway put it."""
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=3)]).values():
        f.result(timeout=30)
    placed = {}
    try:
        p = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random", "acks": "all"})
        want = {m.key(): m.partition() for m in msgs}

        def delivered(err, m):
            if err is not None:
                errors.append(f"produce {m.key()!r}: {err}")
            else:
                placed[m.key()] = m.partition()

        deadline = time.monotonic() + 30
        for key in want:
            while True:  # the topic is new: metadata may lag the create
                try:
                    p.produce(topic, key=key, value=b"x", on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.1)
        while len(p) > 0 and time.monotonic() < deadline:
            p.poll(0.1)
        p.flush(10)
        for key, part in want.items():
            if placed.get(key) != part:
                errors.append(f"key {key!r}: gateway partition {part}, librdkafka murmur2 {placed.get(key)}")
    finally:
        for f in admin.delete_topics([topic]).values():
            f.result(timeout=30)
    return len(placed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--binary", required=True, help="comma-separated binary-mode topics")
    ap.add_argument("--binary-count", type=int, required=True)
    ap.add_argument("--structured", required=True)
    ap.add_argument("--structured-count", type=int, required=True)
    ap.add_argument("--schemas", required=True, type=pathlib.Path)
    ap.add_argument("--murmur-topic", required=True)
    a = ap.parse_args()

    errors = []
    binary = read_all(a.brokers, a.binary.split(","), a.binary_count, 60)
    if len(binary) != a.binary_count:
        errors.append(f"read {len(binary)} binary-mode messages, want {a.binary_count}")
    names = set()
    for m in binary:
        check_binary(m, a.schemas, errors)
        names.add(json.loads(m.value())["event_name"])
    structured = read_all(a.brokers, [a.structured], a.structured_count, 60)
    if len(structured) != a.structured_count:
        errors.append(f"read {len(structured)} structured-mode messages, want {a.structured_count}")
    for m in structured:
        check_structured(m, a.schemas, errors)
    keys = check_partitions(a.brokers, binary, a.murmur_topic, 3, errors)
    print(json.dumps({
        "binary": len(binary),
        "event_names": len(names),
        "structured": len(structured),
        "keys_partitioned": keys,
        "errors": errors,
    }))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
