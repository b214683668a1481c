#!/usr/bin/env bash
# A real Apache Kafka (KRaft) cluster on loopback for the integration suite
# (internal/kafkait). No Docker: the broker jars come from Maven Central
# through pom.xml, and each node is `java -cp ... kafka.Kafka server.properties`.
#
#   cluster.sh start DIR          format (first time) and start every node, wait for all
#   cluster.sh stop DIR           SIGTERM every node, SIGKILL the ones still up after 30 s
#   cluster.sh status DIR         which nodes run
#   cluster.sh kill DIR ID        SIGKILL node ID (a crash)
#   cluster.sh stop-node DIR ID   SIGTERM node ID and wait for it to exit (controlled shutdown)
#   cluster.sh start-node DIR ID  start node ID again and wait until it serves
#   cluster.sh env DIR            print the EMMA_GATEWAY_IT_* variables of a started cluster
#
# Environment (read at the first start, then kept in DIR/cluster.conf):
#   KAFKA_IT_NODES      1 or 3 combined broker+controller nodes (default 3)
#   KAFKA_IT_BASE_PORT  node i listens on PLAINTEXT base+i-1, CONTROLLER base+100+i-1,
#                       SASL_SSL base+200+i-1 (default 29092: 29092-4, 29192-4, 29292-4;
#                       "auto" picks a free base from 20092 to 31092)
#   KAFKA_IT_HEAP       JVM heap per node (default 512m; -Xms is half of it)
#
# DIR holds everything: data, logs (node-N/server.log), the test CA and broker
# certificate (made here with openssl at the first start, never committed), the
# SCRAM-SHA-512 user "gateway" and its random password, and it.env.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# classpath resolves the broker's jars through Maven (the local cache after
# the first run) and caches the classpath in DIR.
classpath() {
  if [ ! -s "$dir/classpath" ] || [ "$here/pom.xml" -nt "$dir/classpath" ]; then
    log "resolving org.apache.kafka:kafka_2.13 with Maven"
    mvn -q -B -f "$here/pom.xml" dependency:build-classpath -Dmdep.outputFile="$dir/classpath.tmp" > "$dir/mvn.log" 2>&1 \
      || die "mvn could not resolve the Kafka jars (is Maven Central reachable?): $(tail -20 "$dir/mvn.log")"
    mv "$dir/classpath.tmp" "$dir/classpath"
  fi
  cat "$dir/classpath"
}

# free_base picks a base port whose nine ports nothing listens on, below
# the ephemeral range (32768-60999 on Linux), whose ports outgoing
# connections take at random; for CI runs that share a machine.
free_base() {
  local b listening
  listening="$(ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)"
  for b in $(shuf -i 200-310 -n 40); do
    b=$((b * 100 + 92))
    local clash=0 off
    for off in 0 1 2 100 101 102 200 201 202; do
      grep -qx "$((b + off))" <<<"$listening" && clash=1
    done
    [ "$clash" -eq 0 ] && { echo "$b"; return; }
  done
  die "no free base port found"
}

load_conf() {
  if [ -f "$dir/cluster.conf" ]; then
    # shellcheck disable=SC1091
    . "$dir/cluster.conf"
  else
    NODES="${KAFKA_IT_NODES:-3}"
    BASE="${KAFKA_IT_BASE_PORT:-29092}"
    [ "$BASE" = auto ] && BASE="$(free_base)"
    HEAP="${KAFKA_IT_HEAP:-512m}"
  fi
  case "$NODES" in 1|3) ;; *) die "KAFKA_IT_NODES must be 1 or 3, not $NODES" ;; esac
}

plain_port() { echo $((BASE + $1 - 1)); }
ctrl_port() { echo $((BASE + 100 + $1 - 1)); }
sasl_port() { echo $((BASE + 200 + $1 - 1)); }
lines() { if [ -f "$dir/node-$1/server.log" ]; then wc -l < "$dir/node-$1/server.log"; else echo 0; fi; }
pid_of() { cat "$dir/node-$1/pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# make_tls writes a throw-away CA and one broker certificate for 127.0.0.1
# and localhost, and the PKCS#12 keystore the brokers read it from.
make_tls() {
  local t="$dir/tls"
  mkdir -p "$t"
  openssl rand -hex 16 > "$t/store-password"
  local pw; pw="$(cat "$t/store-password")"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=emma-gateway test CA" \
    -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$t/broker.key" -out "$t/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$t/broker.ext"
  openssl x509 -req -in "$t/broker.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -days 30 -extfile "$t/broker.ext" -out "$t/broker.pem" 2>/dev/null
  openssl pkcs12 -export -name broker -in "$t/broker.pem" -inkey "$t/broker.key" -certfile "$t/ca.pem" \
    -passout "pass:$pw" -out "$t/broker.p12"
  rm -f "$t/ca.key" "$t/broker.csr" "$t/broker.key" "$t/ca.srl"
}

write_props() {
  local i="$1" n="$dir/node-$1" voters="" j minisr=$(( NODES < 2 ? 1 : 2 ))
  for j in $(seq 1 "$NODES"); do voters="${voters:+$voters,}$j@127.0.0.1:$(ctrl_port "$j")"; done
  mkdir -p "$n/data"
  cat > "$n/server.properties" <<EOF
# Written by deploy/kafka/cluster.sh; see the README section "Apache Kafka".
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(plain_port "$i"),SASL_SSL://127.0.0.1:$(sasl_port "$i"),CONTROLLER://127.0.0.1:$(ctrl_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(plain_port "$i"),SASL_SSL://127.0.0.1:$(sasl_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$n/data

# What operators should set too (README): nothing created behind the gateway's
# back, replicas of 3 with 2 in sync for a write, no data-losing elections.
auto.create.topics.enable=false
unclean.leader.election.enable=false
default.replication.factor=$NODES
min.insync.replicas=$minisr
num.partitions=3
offsets.topic.replication.factor=$NODES
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$NODES
transaction.state.log.min.isr=$minisr
share.coordinator.state.topic.replication.factor=$NODES
share.coordinator.state.topic.min.isr=$minisr

# A shared 2-core machine: few threads.
num.network.threads=2
num.io.threads=2
background.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1

# Tests kill brokers: notice it in seconds, not half a minute.
group.initial.rebalance.delay.ms=0
replica.lag.time.max.ms=4000
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
controller.quorum.election.timeout.ms=1500
controller.quorum.fetch.timeout.ms=3000
controller.quorum.election.backoff.max.ms=1000
controlled.shutdown.enable=true
leader.imbalance.check.interval.seconds=5

# SASL/SCRAM-SHA-512 over TLS for the gateway's authenticated connections.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$(cat "$dir/tls/store-password")
listener.name.sasl_ssl.ssl.key.password=$(cat "$dir/tls/store-password")
EOF
}

write_log4j() {
  cat > "$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
# The line wait_started looks for; everything else only from WARN up (a
# broker at INFO writes tens of thousands of lines a start on this scale).
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

java_opts() {
  echo "-Xmx$HEAP -Xms$(( ${HEAP%m} / 2 ))m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile=$dir/log4j2.properties"
}

format() {
  local cp="$1" id i pids=()
  id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  openssl rand -hex 16 > "$dir/scram-password"
  for i in $(seq 1 "$NODES"); do
    write_props "$i"
    # shellcheck disable=SC2046
    java $(java_opts) -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/node-$i/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=gateway,password=$(cat "$dir/scram-password")]" \
      > "$dir/node-$i/format.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || die "formatting node $((i + 1)) failed: $(cat "$dir/node-$((i + 1))/format.log")"
  done
  echo "$id" > "$dir/cluster-id"
}

launch() {
  local cp="$1" i="$2" n="$dir/node-$2"
  alive "$i" && return 0
  # The log is appended to, so that a restarted node's history stays.
  # shellcheck disable=SC2046
  nohup java $(java_opts) -cp "$cp" kafka.Kafka "$n/server.properties" >> "$n/server.log" 2>&1 < /dev/null &
  echo $! > "$n/pid"
}

# wait_started waits for node i's "Kafka Server started" line written after
# this start (lines counted before), and fails if the JVM died.
wait_started() {
  local i="$1" before="$2" deadline=$((SECONDS + ${3:-90}))
  while [ $SECONDS -lt $deadline ]; do
    alive "$i" || die "node $i exited; see $dir/node-$i/server.log: $(tail -5 "$dir/node-$i/server.log")"
    if tail -n +"$((before + 1))" "$dir/node-$i/server.log" | grep -q 'Kafka Server started'; then
      return 0
    fi
    sleep 0.2
  done
  die "node $i did not start in time; see $dir/node-$i/server.log"
}

# wait_metadata asks the cluster, with Kafka's own tool, for every broker's
# API versions, and waits until all NODES answer.
wait_metadata() {
  local cp="$1" deadline=$((SECONDS + 60)) out got
  while [ $SECONDS -lt $deadline ]; do
    # shellcheck disable=SC2046
    if out="$(java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" \
        org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$(plain_port 1)" 2>/dev/null)"; then
      got="$(grep -c '(id: [0-9]* rack' <<<"$out" || true)"
      [ "$got" -eq "$NODES" ] && return 0
      log "metadata lists $got of $NODES brokers; waiting"
    fi
    sleep 1
  done
  die "the cluster did not list all $NODES brokers within 60 s"
}

write_env() {
  local i plain="" sasl=""
  for i in $(seq 1 "$NODES"); do
    plain="${plain:+$plain,}127.0.0.1:$(plain_port "$i")"
    sasl="${sasl:+$sasl,}127.0.0.1:$(sasl_port "$i")"
  done
  cat > "$dir/it.env" <<EOF
export EMMA_GATEWAY_IT_BROKERS=$plain
export EMMA_GATEWAY_IT_SASL_BROKERS=$sasl
export EMMA_GATEWAY_IT_SASL_USERNAME=gateway
export EMMA_GATEWAY_IT_SASL_PASSWORD=$(cat "$dir/scram-password")
export EMMA_GATEWAY_IT_CA_FILE=$dir/tls/ca.pem
export EMMA_GATEWAY_IT_CLUSTER=$dir
export EMMA_GATEWAY_IT_CLUSTER_SCRIPT=$here/cluster.sh
EOF
}

stop_node() {
  local i="$1" p t="${2:-30}"
  p="$(pid_of "$i")"
  alive "$i" || { rm -f "$dir/node-$i/pid"; return 0; }
  kill -TERM "$p" 2>/dev/null || true
  local deadline=$((SECONDS + t))
  while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$p" 2>/dev/null; then
    log "node $i (pid $p) still up after ${t}s; SIGKILL"
    kill -KILL "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/node-$i/pid"
}

node_arg() {
  local i="${3:-}"
  [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le "$NODES" ] || die "$cmd needs a node id from 1 to $NODES"
  echo "$i"
}

load_conf
case "$cmd" in
  start)
    t0=$SECONDS
    cp="$(classpath)"
    if [ ! -f "$dir/cluster-id" ]; then
      printf 'NODES=%s\nBASE=%s\nHEAP=%s\n' "$NODES" "$BASE" "$HEAP" > "$dir/cluster.conf"
      make_tls
      write_log4j
      format "$cp"
      log "formatted $NODES nodes in $((SECONDS - t0)) s"
    fi
    declare -A before
    for i in $(seq 1 "$NODES"); do
      before[$i]="$(lines "$i")"
      alive "$i" && before[$i]=-1
      launch "$cp" "$i"
    done
    for i in $(seq 1 "$NODES"); do
      [ "${before[$i]}" = -1 ] || wait_started "$i" "${before[$i]}"
    done
    wait_metadata "$cp"
    write_env
    log "$NODES nodes up in $((SECONDS - t0)) s; variables in $dir/it.env"
    ;;
  stop)
    for i in $(seq 1 "$NODES"); do
      alive "$i" && kill -TERM "$(pid_of "$i")" 2>/dev/null || true
    done
    for i in $(seq 1 "$NODES"); do stop_node "$i"; done
    log "stopped"
    ;;
  status)
    up=0
    for i in $(seq 1 "$NODES"); do
      if alive "$i"; then echo "node $i: running (pid $(pid_of "$i"), 127.0.0.1:$(plain_port "$i"))"; up=$((up + 1))
      else echo "node $i: stopped"; fi
    done
    [ "$up" -eq "$NODES" ]
    ;;
  kill)
    i="$(node_arg "$@")"
    p="$(pid_of "$i")"
    alive "$i" && kill -KILL "$p"
    while [ -n "$p" ] && kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/node-$i/pid"
    ;;
  stop-node)
    i="$(node_arg "$@")"
    stop_node "$i"
    ;;
  start-node)
    i="$(node_arg "$@")"
    cp="$(classpath)"
    before="$(lines "$i")"
    alive "$i" && exit 0
    launch "$cp" "$i"
    wait_started "$i" "$before"
    ;;
  env)
    [ -f "$dir/it.env" ] || die "no cluster started in $dir"
    cat "$dir/it.env"
    ;;
  *)
    die "unknown command $cmd (start, stop, status, kill, stop-node, start-node, env)"
    ;;
esac
