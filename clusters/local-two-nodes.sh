#!/usr/bin/env bash
# Start (or stop) a two-node Ray cluster on this machine: a head and one worker node, both on 127.0.0.1.
#   bash clusters/local-two-nodes.sh start   # then: adaptune search --address 127.0.0.1:6390
#   bash clusters/local-two-nodes.sh stop
# Token authentication stays on (Ray's default): the head writes ~/.ray/auth_token, and the worker node and
# every client on this host read it from there with RAY_AUTH_MODE=token.
set -euo pipefail
RAY="${RAY:-$(dirname "$0")/../.venv/bin/ray}"
PORT="${PORT:-6390}"
CPUS_PER_NODE="${CPUS_PER_NODE:-1}"
case "${1:-start}" in
  start)
    "$RAY" start --head --port="$PORT" --node-ip-address=127.0.0.1 --num-cpus="$CPUS_PER_NODE" \
      --dashboard-host=127.0.0.1 --dashboard-port=8266 --disable-usage-stats
    RAY_AUTH_MODE=token "$RAY" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 \
      --num-cpus="$CPUS_PER_NODE" --disable-usage-stats
    echo "cluster up: adaptune search --address 127.0.0.1:$PORT"
    ;;
  stop)
    "$RAY" stop --force
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
