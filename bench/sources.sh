#!/usr/bin/env bash
# Event sources end to end on Redis Streams, NATS JetStream, PostgreSQL row changes and RabbitMQ
# queues: messages per second from the broker to succeeded invocations, and publish → function start latency at half that rate. Run
# `bench/sources.sh --help`.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-50000}
PACED_SECONDS=${PACED_SECONDS:-10}
RATE=${RATE:-}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
KINDS=${KINDS:-redis nats postgres amqp}
NATS_PY_VERSION=2.16.0
PIKA_VERSION=1.3.2
RESULTS=bench/results/sources.md

usage() {
    cat <<EOF
Usage: bench/sources.sh [--help]

Builds Vireo (release) and the example components, starts vireo serve on 127.0.0.1 (the
default SQLite store) and, for each kind in KINDS, its broker on a free loopback port
(redis-server; nats-server -js; a throwaway PostgreSQL, initdb into a temporary directory; a
private rabbitmq-server node with its own Erlang port mapper, in a temporary directory),
deploys hello (a no-op answering 14 bytes) as two functions with a source of that kind each,
then:
  1. throughput: publishes MESSAGES messages to the first source at once (redis-cli --pipe;
     bench/nats_publish.py, core NATS publishes into the stream; one INSERT of MESSAGES rows,
     each a change the trigger records; bench/amqp_publish.py, persistent messages into a
     durable queue without publisher confirms) and times from the first publish until the
     function's queue counts them all succeeded; the server's and the broker's CPU time per
     message over that time come from /proc (for PostgreSQL, all its processes);
  2. latency: publishes to the second source at RATE messages/s (default half the rate
     measured in 1) for PACED_SECONDS s, each message carrying its publish time (wall clock,
     microseconds) as the field or header sent-us (PostgreSQL: the row's column sent_us),
     then waits for them all to succeed;
  3. reads, with sqlite3 from the data directory after the server stopped, each paced
     message's publish time (the x-vireo-msg-sent-us header its queued invocation keeps, or
     the changed row in its body), its commit to Vireo's queue (accepted_at_us) and its
     function's start (the invocation record's started_at_us): p50/p99/max of publish →
     commit and publish → start.
The targets (issue "Event sources"): >= 5,000 messages/s end to end for NATS and Redis on
SQLite; p99 publish → function start <= 50 ms at half that rate. Brokers, Vireo and the
publisher share the machine's cores.
Installs redis-server, redis-tools, nats-server, postgresql, rabbitmq-server, jq and sqlite3
(apt-get), nats-py $NATS_PY_VERSION and pika $PIKA_VERSION (pip, in a throwaway venv) and the
wasm32-wasip2 target (rustup) when missing.

Options:
  -h, --help      show this help

Environment:
  KINDS           the kinds measured, in order (default "redis nats postgres amqp")
  MESSAGES        messages published in 1 (default 50000)
  PACED_SECONDS   seconds of paced publishing in 2 (default 10)
  RATE            messages/s in 2 (default: half the rate measured in 1)
  DRAIN_TIMEOUT   seconds to wait for each phase's messages to succeed (default 600)
  VIREO_BIN       a prebuilt vireo binary to measure (default: build target/release/vireo)
EOF
}

start_broker_nats() {
    BROKER_PORT=$(free_port)
    start_broker nats nats-server -js -a 127.0.0.1 -p "$BROKER_PORT" -sd "$WORK/nats"
    wait_for 10 0.1 grep -q 'Server is ready' "$WORK/nats.log" ||
        die "nats-server did not start on 127.0.0.1:$BROKER_PORT: $(tail -n 5 "$WORK/nats.log")"
    BROKER_URL=nats://127.0.0.1:$BROKER_PORT
}

# ensure_python_package REQUIREMENT : the publishers' venv, with REQUIREMENT installed.
ensure_python_package() {
    python3 -c 'import ensurepip, venv' 2>/dev/null ||
        die "python3 cannot make a venv: apt-get install python3-venv"
    [[ -x $WORK/venv/bin/python ]] || run python3 -m venv "$WORK/venv"
    run "$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$1"
}

nats_publish() { "$WORK/venv/bin/python" bench/nats_publish.py "$BROKER_URL" "$@"; }
amqp_publish() { "$WORK/venv/bin/python" bench/amqp_publish.py "$BROKER_URL" "$@"; }

# A RabbitMQ node of this run's own: its name, ports, Erlang port mapper and files are private
# (the package's system service is not used), the default guest user reached from loopback.
start_broker_amqp() {
    BROKER_PORT=$(free_port)
    local epmd_port dist_port node=bench$BROKER_PORT@localhost dir=$WORK/rabbitmq
    epmd_port=$(free_port)
    dist_port=$(free_port)
    mkdir -p "$dir"
    echo '[].' >"$dir/enabled_plugins"
    start_broker epmd epmd -address 127.0.0.1 -port "$epmd_port"
    start_broker rabbitmq env HOME="$dir" RABBITMQ_NODENAME="$node" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$BROKER_PORT" \
        RABBITMQ_DIST_PORT="$dist_port" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$epmd_port" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_for 90 0.2 grep -q 'Server startup complete' "$dir/log/$node.log" ||
        die "rabbitmq-server did not start on 127.0.0.1:$BROKER_PORT: $(tail -n 5 "$WORK/rabbitmq.log")"
    BROKER_URL=amqp://127.0.0.1:$BROKER_PORT/%2f
}

# A database on a PostgreSQL of this run's own; its tables are the sources' streams.
start_broker_postgres() {
    start_postgres
    BROKER_URL=$(fresh_database)
}

# psql_run SQL : one statement on the source database.
psql_run() {
    record "psql $BROKER_URL -c $(quote "$1")"
    "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$BROKER_URL" -c "$1" >/dev/null
}

# psql_pipe WHAT : the statements on stdin, on the source database; WHAT says what they are.
psql_pipe() {
    record "psql $BROKER_URL  # $1"
    "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$BROKER_URL" >/dev/null
}

# broker_ticks KIND : the broker's CPU ticks so far.
broker_ticks() {
    case $1 in
    postgres) postgres_ticks ;;
    # The Erlang VM, not the start script.
    amqp) cpu_ticks "$(pgrep -f -n "beam.smp.*$BROKER_PORT")" ;;
    *) cpu_ticks "$BROKER_PID" ;;
    esac
}

# stop_broker KIND : stops the broker of KIND.
stop_broker() {
    case $1 in
    postgres) stop_postgres ;;
    *) stop_pid "$BROKER_PID" ;;
    esac
}

# xadd_resp STREAM FIRST LAST [SENT_US] : the RESP commands adding entries FIRST..LAST to
# STREAM, each with a `payload` field (the body the function receives) and, with SENT_US, a
# `sent-us` field (a header to the function).
xadd_resp() {
    awk -v stream="$1" -v first="$2" -v last="$3" -v sent="${4:-}" 'BEGIN {
        for (i = first; i <= last; i++) {
            payload = "{\"n\":" i "}"
            if (sent == "") {
                printf "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$7\r\npayload\r\n$%d\r\n%s\r\n",
                    length(stream), stream, length(payload), payload
            } else {
                printf "*7\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$7\r\npayload\r\n$%d\r\n%s\r\n$7\r\nsent-us\r\n$%d\r\n%s\r\n",
                    length(stream), stream, length(payload), payload, length(sent), sent
            }
        }
    }'
}

# prepare_stream KIND STREAM : the stream a source of KIND reads, before the source exists.
prepare_stream() {
    case $1 in
    # The consumer group starts at the stream's end, so this first entry is not delivered.
    redis) redis-cli -p "$BROKER_PORT" XADD "$2" '*' seed 1 >/dev/null ;;
    nats) nats_publish "$2" "$2.*" create ;;
    postgres) psql_run "CREATE TABLE $2 (n bigint PRIMARY KEY, sent_us bigint)" ;;
    amqp) amqp_publish "$2" create ;;
    esac
}

# add_source KIND NAME STREAM : the stream, then a source of KIND named NAME reading it for the
# function NAME.
add_source() {
    prepare_stream "$1" "$3"
    run admin_curl -fsS -o /dev/null -H 'content-type: application/json' \
        -d "{\"name\":\"$2\",\"kind\":\"$1\",\"url\":\"$BROKER_URL\",\"stream\":\"$3\",\"function\":\"$2\"}" \
        "http://$SERVER_ADDR/v1/namespaces/default/sources"
}

# publish_all KIND STREAM COUNT : COUNT messages as fast as the publisher sends them.
publish_all() {
    case $1 in
    redis) xadd_resp "$2" 1 "$3" | redis-cli -p "$BROKER_PORT" --pipe >"$WORK/$2.pipe" ;;
    nats) nats_publish "$2" "$2.messages" publish "$3" >/dev/null ;;
    postgres) psql_run "INSERT INTO $2 SELECT g, NULL FROM generate_series(1, $3) g" ;;
    amqp) amqp_publish "$2" publish "$3" >/dev/null ;;
    esac
}

# publish_paced KIND STREAM RATE SECONDS : RATE messages/s for SECONDS, in 10 ms steps that
# catch up with the clock, each with its publish time.
publish_paced() {
    local kind=$1 stream=$2 rate=$3 seconds=$4 total=$(($3 * $4))
    case $kind in
    redis) paced "$rate" "$total" redis_entries "$stream" | redis-cli -p "$BROKER_PORT" --pipe >"$WORK/$stream.pipe" ;;
    nats) nats_publish "$stream" "$stream.messages" publish "$total" "$rate" >/dev/null ;;
    amqp) amqp_publish "$stream" publish "$total" "$rate" >/dev/null ;;
    postgres)
        paced "$rate" "$total" postgres_rows "$stream" |
            psql_pipe "every 10 ms: INSERT INTO $stream SELECT g, <now µs> FROM generate_series(<next>, <due>) g"
        ;;
    esac
}

# paced RATE TOTAL EMIT STREAM : EMIT STREAM FIRST LAST for the messages due at RATE/s, in 10 ms
# steps that catch up with the clock, until TOTAL are out.
paced() {
    local rate=$1 total=$2 emit=$3 stream=$4 start sent=0 due
    start=$(now_us)
    while ((sent < total)); do
        due=$((($(now_us) - start) * rate / 1000000))
        ((due > total)) && due=$total
        if ((due > sent)); then
            "$emit" "$stream" $((sent + 1)) "$due"
            sent=$due
        fi
        sleep 0.01
    done
}

# redis_entries STREAM FIRST LAST : XADDs of entries FIRST..LAST, sent now.
redis_entries() { xadd_resp "$1" "$2" "$3" "$(now_us)"; }

# postgres_rows STREAM FIRST LAST : an INSERT of rows FIRST..LAST, sent now.
postgres_rows() { echo "INSERT INTO $1 SELECT g, $(now_us) FROM generate_series($2, $3) g;"; }

queue_counts() { admin_curl -fsS --max-time 5 "http://$SERVER_ADDR/v1/namespaces/default/functions/$1/queue"; }

# all_succeeded FUNCTION COUNT : whether COUNT of FUNCTION's invocations succeeded (and
# none failed).
all_succeeded() {
    local counts
    counts=$(queue_counts "$1")
    jq -e '.failed + .dead == 0' <<<"$counts" >/dev/null || die "$1's invocations failed: $counts"
    jq -e --argjson n "$2" '.succeeded >= $n' <<<"$counts" >/dev/null
}

# per_message BEFORE AFTER COUNT : CPU ticks BEFORE..AFTER as microseconds per message.
per_message() {
    awk -v a="$1" -v b="$2" -v t="$((1000000 / $(getconf CLK_TCK)))" -v n="$3" \
        'BEGIN { printf "%.1f", (b - a) * t / n }'
}

# measure KIND : both phases for KIND; appends a row to THROUGHPUT_ROWS and sets PACED_RATE_OF
# and PACED_COUNT_OF for it.
measure() {
    local kind=$1 bulk=$1-bulk paced=$1-paced
    # Streams are named like the functions, with _ for - (a PostgreSQL table needs it).
    "start_broker_$kind"
    deploy_hello "$bulk"
    deploy_hello "$paced"
    add_source "$kind" "$bulk" "${bulk//-/_}"
    add_source "$kind" "$paced" "${paced//-/_}"

    log "$kind 1. publishing $MESSAGES messages at once"
    local start server_ticks broker_ticks seconds rate
    server_ticks=$(cpu_ticks "$SERVER_PID")
    broker_ticks=$(broker_ticks "$kind")
    start=$(now_us)
    publish_all "$kind" "${bulk//-/_}" "$MESSAGES"
    wait_for "$DRAIN_TIMEOUT" 0.05 all_succeeded "$bulk" "$MESSAGES" ||
        die "not all $MESSAGES $kind messages succeeded within ${DRAIN_TIMEOUT}s: $(queue_counts "$bulk")"
    seconds=$(seconds_since "$start")
    rate=$(awk -v n="$MESSAGES" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
    THROUGHPUT_ROWS+=("| $kind | $MESSAGES | $seconds | $rate | $(per_message "$server_ticks" "$(cpu_ticks "$SERVER_PID")" "$MESSAGES") µs | $(per_message "$broker_ticks" "$(broker_ticks "$kind")" "$MESSAGES") µs |")
    log "$kind: $MESSAGES messages in ${seconds}s: $rate/s"

    local paced_rate=${RATE:-$((rate / 2))}
    log "$kind 2. publishing $paced_rate messages/s for ${PACED_SECONDS}s"
    publish_paced "$kind" "${paced//-/_}" "$paced_rate" "$PACED_SECONDS"
    PACED_RATE_OF[$kind]=$paced_rate
    PACED_COUNT_OF[$kind]=$((paced_rate * PACED_SECONDS))
    wait_for "$DRAIN_TIMEOUT" 0.1 all_succeeded "$paced" "${PACED_COUNT_OF[$kind]}" ||
        die "not all ${PACED_COUNT_OF[$kind]} paced $kind messages succeeded within ${DRAIN_TIMEOUT}s: $(queue_counts "$paced")"
    stop_broker "$kind"
}

# latency_row KIND : the paced messages' latencies, read from the stopped server's database.
latency_row() {
    local kind=$1
    # The header as the queue keeps it (one `name: value` line per header), or the changed row.
    local sent="CAST(substr(CAST(a.headers AS TEXT), instr(CAST(a.headers AS TEXT), 'x-vireo-msg-sent-us: ') + 21, 16) AS INTEGER)"
    if [[ $kind == postgres ]]; then sent="json_extract(CAST(a.body AS TEXT), '\$.new.sent_us')"; fi
    local query="SELECT (a.accepted_at_us - $sent) / 1000.0, (i.started_at_us - $sent) / 1000.0
        FROM async_invocations a JOIN invocations i ON i.id = a.id
        WHERE a.function = '$kind-paced' AND a.status = 'succeeded'"
    record "sqlite3 DATA/vireo.db \"$(tr -s ' \n' ' ' <<<"$query")\""
    sqlite3 -separator ' ' "$WORK/data/vireo.db" "$query" >"$WORK/$kind.latency"
    awk '{print $1}' "$WORK/$kind.latency" >"$WORK/$kind.commit.ms"
    awk '{print $2}' "$WORK/$kind.latency" >"$WORK/$kind.start.ms"
    local count commit_p50 commit_p99 commit_max start_p50 start_p99 start_max
    read -r count commit_p50 commit_p99 commit_max < <(stats "$WORK/$kind.commit.ms")
    read -r _ start_p50 start_p99 start_max < <(stats "$WORK/$kind.start.ms")
    ((count == PACED_COUNT_OF[$kind])) ||
        die "$count of ${PACED_COUNT_OF[$kind]} paced $kind messages have a record"
    echo "| $kind | ${PACED_RATE_OF[$kind]}/s for ${PACED_SECONDS}s | $count | $(fmt "$commit_p50" 1) / $(fmt "$commit_p99" 1) / $(fmt "$commit_max" 1) | $(fmt "$start_p50" 1) / $(fmt "$start_p99" 1) / $(fmt "$start_max" 1) |"
}

main() {
    accept_options "" "" "$@"
    require_whole MESSAGES messages
    require_whole PACED_SECONDS seconds
    [[ -z $RATE ]] || require_whole RATE "messages per second"
    require_whole DRAIN_TIMEOUT seconds
    local kind
    for kind in $KINDS; do
        [[ $kind == redis || $kind == nats || $kind == postgres || $kind == amqp ]] ||
            die "KINDS: unknown kind $kind (redis, nats, postgres, amqp)"
    done
    init_work vireo-sources
    ensure_tool jq
    ensure_tool sqlite3
    ensure_tool python3
    for kind in $KINDS; do
        case $kind in
        redis)
            ensure_tool redis-server
            ensure_tool redis-cli redis-tools
            ;;
        nats)
            ensure_tool nats-server
            ensure_python_package "nats-py==$NATS_PY_VERSION"
            ;;
        postgres) ensure_tool pg_ctlcluster postgresql ;;
        amqp)
            [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || run apt-get install -y -q rabbitmq-server
            ensure_python_package "pika==$PIKA_VERSION"
            ;;
        esac
    done
    ensure_wasip2_target
    build_vireo

    THROUGHPUT_ROWS=()
    declare -gA PACED_RATE_OF=() PACED_COUNT_OF=()
    start_vireo vireo "$WORK/data"
    for kind in $KINDS; do measure "$kind"; done
    stop_server
    local latency_rows=()
    for kind in $KINDS; do latency_rows+=("$(latency_row "$kind")"); done

    {
        echo "# Event sources: from the broker to a function"
        echo
        echo "hello (a no-op answering 14 bytes) behind each source; SQLite store; brokers, Vireo and the"
        echo "publisher on the same machine."
        echo
        echo "| kind | messages at once | seconds to all succeeded | messages/s | server CPU per message | broker CPU per message |"
        echo "|---|---:|---:|---:|---:|---:|"
        printf '%s\n' "${THROUGHPUT_ROWS[@]}"
        echo
        echo "| kind | paced at | messages | publish → commit p50 / p99 / max (ms) | publish → function start p50 / p99 / max (ms) |"
        echo "|---|---:|---:|---|---|"
        printf '%s\n' "${latency_rows[@]}"
        echo
        machine_section "$(redis-server --version 2>/dev/null || true)" "nats-server $(nats-server --version 2>/dev/null || true)" "$("${PG_BIN:-/usr/bin}/postgres" --version 2>/dev/null || true)" "rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || true)"
        commands_section
    } | write_result "$RESULTS"
    cat "$RESULTS"
}

main "$@"
