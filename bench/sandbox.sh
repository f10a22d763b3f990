#!/usr/bin/env bash
# Sandbox overhead: `pyship test --image` next to `podman run` of the same image, in the
# same run. For each: time from start to the first HTTP answer, the app's own boot time (it
# prints it), their difference (the runtime's overhead), and the teardown time. RUNS runs
# each (default 5); the table shows medians in milliseconds. Needs root and the test bed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
eval "$(fixtures/testbed/up)"
runs=${RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/pyship" ./cmd/pyship
export PYSHIP_CACHE_DIR=$work/cache
ref=$("$work/pyship" build bench/app --image "$PYSHIP_TEST_REGISTRY/bench/app:latest" --push 2>/dev/null)
"$work/pyship" build bench/app --oci-layout "$work/oci" >/dev/null 2>&1
"$work/pyship" test --image "$work/oci" >/dev/null 2>&1 # unpack once
podman pull -q "$ref" >/dev/null

now_ms() { date +%s%3N; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A t
for i in $(seq 1 "$runs"); do
  # pyship: the report has the time to first response and the teardown; the app's output
  # has its boot time.
  "$work/pyship" test --image "$work/oci" --json >"$work/report.json" 2>/dev/null
  read -r first teardown boot < <(python3 - "$work/report.json" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
boot = next(float(m.group(1)) for line in r["output"] for m in [re.search(r"booted in (\d+) ms", line)] if m)
print(r["time_to_first_response_ns"] / 1e6, r["teardown_ns"] / 1e6, boot)
PY
)
  t[pyship_first]+="$first "
  t[pyship_boot]+="$boot "
  t[pyship_over]+="$(awk -v a="$first" -v b="$boot" 'BEGIN {print a - b}') "
  t[pyship_down]+="$teardown "

  # podman: the same image, the same questions.
  port=$((20000 + RANDOM % 20000))
  start=$(now_ms)
  id=$(podman run -d --rm --init -p "127.0.0.1:$port:8080" "$ref")
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do sleep 0.01; done
  first=$(($(now_ms) - start))
  boot=$(podman logs "$id" 2>&1 | sed -n 's/booted in \([0-9]*\) ms/\1/p' | head -1)
  start=$(now_ms)
  podman rm -f -t 5 "$id" >/dev/null
  down=$(($(now_ms) - start))
  t[podman_first]+="$first "
  t[podman_boot]+="$boot "
  t[podman_over]+="$((first - boot)) "
  t[podman_down]+="$down "
done

printf '%-22s %16s %12s %12s %12s\n' "runtime ($runs runs)" "first answer" "app boot" "overhead" "teardown"
for r in pyship podman; do
  printf '%-22s %16.0f %12.0f %12.0f %12.0f\n' "$r" \
    "$(median <<<"${t[${r}_first]}")" "$(median <<<"${t[${r}_boot]}")" \
    "$(median <<<"${t[${r}_over]}")" "$(median <<<"${t[${r}_down]}")"
done
echo "(medians, milliseconds; overhead = first answer - app boot)"
