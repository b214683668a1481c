#!/usr/bin/env bash
# The Apache Kafka integration suite in one command: a three-node KRaft
# cluster in a temporary directory (KAFKA_IT_DIR to choose it), the Python
# consumers' venv, `go test` of internal/kafkait, and the cluster stopped
# on exit. Arguments go to go test, e.g. `bash deploy/kafka/it.sh -run SASL -v`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${KAFKA_IT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/emma-gateway-kafka.XXXXXX")}"
trap 'bash "$root/deploy/kafka/cluster.sh" stop "$dir"' EXIT
py="$(bash "$root/deploy/kafka/python/venv.sh")"
bash "$root/deploy/kafka/cluster.sh" start "$dir"
set -a
# shellcheck disable=SC1091
. "$dir/it.env"
set +a
export EMMA_GATEWAY_IT_PYTHON="$py"
cd "$root"
go test -count=1 "$@" ./internal/kafkait/
