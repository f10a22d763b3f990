#!/usr/bin/env bash
# Corpus run: `pyship test --json` on each repository listed in bench/corpus.txt, checked out
# under DIR (default /tmp/corpus) as DIR/owner+name (a subdir after a colon is tested inside
# that checkout). Prints one line per entry: repo, verdict (pass, fail: the smoke test failed,
# error: no verdict, pyship stopped before or during the build), exit code, seconds, and the
# cause (the first line of pyship's error, or the smoke verdict's reason). Then the pass rate.
# Nothing is copied into this repository; the checkouts are made by hand (see corpus.txt).
# An entry whose comment holds "[needs: WHAT]" is an app that cannot answer without an outside
# service (a database, an API key): it runs all the same, and its line says so, but the pass
# rate is over the others (the goal is about apps that can answer on their own).
# Needs root and the test bed. Not run by CI. ONLY=substring limits the run to matching lines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
eval "$(fixtures/testbed/up)"
dir=${1:-/tmp/corpus}
list=${CORPUS_LIST:-bench/corpus.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/pyship" ./cmd/pyship
export PYSHIP_CACHE_DIR=${PYSHIP_CACHE_DIR:-$dir/.pyship-cache}
logs=${CORPUS_LOGS:-$dir/.logs}
mkdir -p "$logs"

# cause OUT ERR prints the smoke verdict's reason from the JSON report OUT, or else the first
# line of pyship's error in ERR (its log lines start with "["), on one line of ~120 chars.
cause() {
  python3 - "$1" "$2" <<'PY'
import json, re, sys
out, err = sys.argv[1], sys.argv[2]
text = ""
try:
    r = json.load(open(out))
    if r.get("verdict") != "pass":
        text = ": ".join(x for x in (r.get("failure", ""), r.get("reason", "")) if x)
        # The app's last line of output says why it exited (a traceback's last line).
        last = [l for l in r.get("output") or [] if l.strip()]
        if r.get("failure") == "exited" and last:
            text += " | " + last[-1]
except (OSError, ValueError):
    lines = [l.strip() for l in open(err, errors="replace") if not l.startswith("[")]
    lines = [l for l in lines if l]
    if lines:
        text = lines[0]
        # A header like "... failed (pip exited with code 1):": add pip's own error line.
        if text.endswith(":"):
            key = re.compile(r"ERROR: |No matching distribution|requires? a different Python|"
                             r"not found|No module named|Error: |error: (?!subprocess)")
            more = [l for l in lines[1:] if key.search(l) and not l.startswith("hint:")]
            if more:
                text += " " + more[0]
text = " ".join(text.split())
print(text[:117] + "..." if len(text) > 120 else text)
PY
}

# verdict OUT prints the report's verdict, or "error" when there is no report.
verdict() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$1" 2>/dev/null || echo error
}

total=0
passed=0
needy=0
while read -r entry comment; do
  [[ -z $entry || $entry == \#* ]] && continue
  [[ -n ${ONLY:-} && $entry != *"$ONLY"* ]] && continue
  repo=${entry%%:*}
  sub=
  [[ $entry == *:* ]] && sub=${entry#*:}
  src=$dir/${repo/\//+}${sub:+/$sub}
  name=${entry//[\/:]/+}
  needs=
  [[ $comment == *"[needs: "* ]] && needs=${comment#*\[needs: } && needs=${needs%%]*}
  if [[ -n $needs ]]; then
    needy=$((needy + 1))
  else
    total=$((total + 1))
  fi
  if [[ ! -d $src ]]; then
    printf '%-56s %-6s %4s %6s  %s\n' "$entry" error - - "no checkout at $src"
    continue
  fi
  t0=$(date +%s)
  code=0
  timeout 600 "$work/pyship" test --json "$src" >"$logs/$name.json" 2>"$logs/$name.err" </dev/null || code=$?
  secs=$(($(date +%s) - t0))
  v=$(verdict "$logs/$name.json")
  [[ $code == 124 ]] && v=error
  [[ $v == pass && -z $needs ]] && passed=$((passed + 1))
  why=$(cause "$logs/$name.json" "$logs/$name.err")
  [[ -n $needs ]] && why="(needs $needs; not counted) $why"
  printf '%-56s %-6s %4s %6s  %s\n' "$entry" "$v" "$code" "$secs" "$why"
done <"$list"
awk -v p="$passed" -v t="$total" -v n="$needy" 'BEGIN {printf "passed %d of %d (%.0f%%); %d more need an outside service\n", p, t, t ? 100 * p / t : 0, n}'
