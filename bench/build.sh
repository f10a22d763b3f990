#!/usr/bin/env bash
# Wall time of pyship builds of fixtures/flask-hello: a cold build (empty cache), a rebuild
# after an app.py edit, and a no-op rebuild. Each is run RUNS times (default 3); the table
# shows the median, min and max in seconds. Needs the test bed (it brings it up) and root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
eval "$(fixtures/testbed/up)"
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/pyship" ./cmd/pyship

# seconds CMD... runs CMD quietly and prints its wall time.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.log" || { cat "$work/last.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

declare -A times
for i in $(seq 1 "$runs"); do
  rm -rf "$work/src" "$work/cache" "$work/out"
  cp -r fixtures/flask-hello "$work/src"
  export PYSHIP_CACHE_DIR=$work/cache
  times[cold]+="$(seconds "$work/pyship" build "$work/src" --oci-layout "$work/out") "
  echo "# edit $i" >>"$work/src/app.py"
  times[edit]+="$(seconds "$work/pyship" build "$work/src" --oci-layout "$work/out") "
  grep -q "dependencies cached" "$work/last.log" || { echo "the rebuild after an edit ran pip" >&2; exit 1; }
  times[noop]+="$(seconds "$work/pyship" build "$work/src" --oci-layout "$work/out") "
done

stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%8.2f %8.2f %8.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
printf '%-32s %8s %8s %8s\n' "flask-hello ($runs runs)" median min max
printf '%-32s %s\n' "cold build (empty cache)" "$(stats <<<"${times[cold]}")"
printf '%-32s %s\n' "rebuild after app.py edit" "$(stats <<<"${times[edit]}")"
printf '%-32s %s\n' "no-op rebuild" "$(stats <<<"${times[noop]}")"
