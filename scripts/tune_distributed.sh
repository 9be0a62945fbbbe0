#!/usr/bin/env bash
# Run a distributed KerasTuner search on this machine: one chief (the oracle) and N workers.
#
#   scripts/tune_distributed.sh [-n WORKERS] [-p PORT] --out DIR [other python -m sound_tf.tune flags]
#
# Every process runs the same `python -m sound_tf.tune` command; KerasTuner's environment variables make
# one of them the chief (KERASTUNER_TUNER_ID=chief: it hands out trials and records results, then writes
# trials.csv and trains best_run/) and the others workers (tuner0, tuner1, ...: they run trials).
# The chief's output goes to this terminal (and DIR/tune.log), each worker's to DIR/workers/<id>/tune.out.
# Ctrl-C (or this script's end, for any reason) stops every process it started. Re-running the same
# command continues an interrupted search. Across machines, start the same command by hand (README).
set -euo pipefail

workers=2
port=""
args=()
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--workers) workers="$2"; shift 2 ;;
    -p|--port) port="$2"; shift 2 ;;
    --out) out="$2"; args+=("$1" "$2"); shift 2 ;;
    --out=*) out="${1#--out=}"; args+=("$1"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$out" ]; then
  echo "error: --out DIR is required (the folder the chief and the workers share)" >&2
  exit 2
fi
if ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: -n WORKERS must be a positive integer, got '$workers'" >&2
  exit 2
fi
python="${PYTHON:-python}"
if [ -z "$port" ]; then
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
export KERASTUNER_ORACLE_IP=127.0.0.1
export KERASTUNER_ORACLE_PORT="$port"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KERASTUNER_TUNER_ID=chief "$python" -m sound_tf.tune "${args[@]}" &
chief=$!
pids+=("$chief")
echo "chief (pid $chief) serving on 127.0.0.1:$port; waiting for it to prepare the data" >&2

# Start the workers once this chief is serving (after --overwrite cleared the folder and the data
# are decoded, so the workers reuse the decode cache instead of racing the chief for it).
until [ -f "$out/chief.json" ] && grep -q "\"pid\": $chief," "$out/chief.json"; do
  if ! kill -0 "$chief" 2>/dev/null; then
    wait "$chief" && status=0 || status=$?
    echo "error: the chief exited (status $status) before serving" >&2
    exit "${status/#0/1}"
  fi
  sleep 0.5
done
for ((k = 0; k < workers; k++)); do
  mkdir -p "$out/workers/tuner$k"
  KERASTUNER_TUNER_ID="tuner$k" "$python" -m sound_tf.tune "${args[@]}" >"$out/workers/tuner$k/tune.out" 2>&1 &
  pids+=("$!")
  echo "worker tuner$k (pid $!) started; output in $out/workers/tuner$k/tune.out" >&2
done

wait "$chief" && status=0 || status=$?
echo "chief finished with status $status" >&2
exit "$status"
