#!/usr/bin/env bash
# pyship next to `buildah bud --layers`, building the same apps (bench/apps/NAME) in the same
# run: RUNS rounds (default 3) of, per app and per tool,
#   cold   empty caches: pyship with a fresh PYSHIP_CACHE_DIR, buildah with fresh storage; both
#          pull the base from the test bed's registry within the timed build;
#   edit   a rebuild after a comment is appended to the app's main module;
#   noop   a rebuild with nothing changed;
#   fresh  pyship on an empty cache directory with the registry cache present (--cache-repo
#          REPO, in a registry this run starts, filled once per app by a build with an empty
#          cache of its own); its ratio is to buildah's cold; n/a while `pyship build --help`
#          has no --cache-repo;
# plus the compressed image size (the blobs of an OCI layout: layers, config, manifest) and the
# peak RSS of the cold build. Each tool keeps its results where its rebuilds find them: buildah
# in its storage, pyship in one --oci-layout per round (cold, edit and no-op write into it, as a
# user's rebuilds into the same output do; fresh writes a new one). For the size, pyship's image
# is written once more into a layout of its own, and buildah's pushed to one, after the timing. The table shows medians
# and ratios (pyship / buildah) next to the goals; it reports, it asserts nothing.
#
# buildah builds the Dockerfile a careful user writes (see dockerfile below): the same base, a
# venv, the dependency files first, pip with the host's CA bundle mounted (this machine's TLS
# proxy), the app, a non-root user. For uvlock it installs `uv export --no-dev --no-emit-project`
# (written with hashes into the build context at script time) with pip --require-hashes
# --no-deps, which is what pyship runs for a uv.lock.
#
# Env: RUNS (default 3), APPS (default "flask fastapi django uvlock"), KEEP=1 keeps the temp
# dir (its path goes to stderr), NO_LOOP=1 (see work= below). Needs root, the test bed (it
# brings it up) and PyPI. Each app goes through `pyship test` once after the rounds. Any failed
# build stops the run with its log.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
start=$SECONDS
runs=${RUNS:-3}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: RUNS must be a positive number, not \"$runs\"" >&2; exit 2; }
# The module an edit touches, per app.
declare -A main=([flask]=app.py [fastapi]=main.py [django]=benchsite/views.py [uvlock]=inventory/app.py)
read -r -a apps <<<"${APPS:-flask fastapi django uvlock}"
for app in "${apps[@]}"; do
  [[ -n ${main[$app]:-} ]] || { echo "compare.sh: no app \"$app\" (APPS takes some of: ${!main[*]})" >&2; exit 2; }
done
eval "$(fixtures/testbed/up)"
base=$PYSHIP_TEST_REGISTRY/library/python:3.13-slim
work=$(mktemp -d)
# The work (both tools' caches, storage and outputs) runs on an ext4 file system of its own,
# with a journal, made fresh in a sparse file on a loop device: the disk a CI runner has. This
# machine's root file system is ext4 without a journal, where ext4 skips every inode deleted in
# the last 60 to 300 s when it makes a file, reading the inode table to find out: each round
# then paid for the deletions of the round before (a FastAPI cold build took 4.6-5.9 s there
# against 2.5-2.7 s here, the same binary). NO_LOOP=1 keeps the work on the file system of
# $TMPDIR; the table's header says which it was.
fs="$(findmnt -n -o FSTYPE --target "$work") under $work (the file system of \$TMPDIR)"
if [[ -z ${NO_LOOP:-} ]]; then
  truncate -s 32G "$work.img" && mkfs.ext4 -q -F "$work.img" && mount -o loop "$work.img" "$work" ||
    { echo "compare.sh: cannot put the work on a loop device (NO_LOOP=1 runs without one)" >&2; rm -f "$work.img"; exit 1; }
  fs="ext4 with a journal, fresh, on a loop device"
fi
storage=$work/buildah
registry_pid=

# unmount_under DIR lazily unmounts whatever is still mounted below DIR, deepest first.
unmount_under() {
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
}

# bah runs buildah on storage of its own under $work (a command, not a function, so that GNU
# time can run it).
bah=(env CONTAINERS_STORAGE_CONF="$work/storage.conf" TMPDIR="$work/tmp"
  buildah --root "$storage/root" --runroot "$storage/run" --storage-driver overlay)

# buildah_reset removes buildah's containers, images and storage; overlay mounts stay busy
# unless the containers and images go first.
buildah_reset() {
  if [[ -d $storage ]]; then
    "${bah[@]}" rm -a >/dev/null 2>&1 || true
    "${bah[@]}" rmi -a -f >/dev/null 2>&1 || true
    unmount_under "$storage"
    rm -rf "$storage"
  fi
}

cleanup() {
  if [[ -n $registry_pid ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  buildah_reset
  unmount_under "$work"
  if [[ -n ${KEEP:-} ]]; then
    echo "compare.sh: kept $work" >&2
    [[ ! -f $work.img ]] || echo "compare.sh: (on a loop device: umount $work && rm $work.img when done)" >&2
  elif [[ -f $work.img ]]; then
    umount "$work" || umount -l "$work"
    rm -f "$work.img"
    rmdir "$work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/tmp"
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$storage/root"
runroot = "$storage/run"
CONF
CGO_ENABLED=0 go build -o "$work/pyship" ./cmd/pyship
pyship=$work/pyship

# fail LOG CMD... says which command failed, prints its log and stops the run.
fail() {
  local log=$1
  shift
  {
    echo "compare.sh: FAILED: $*"
    cat "$log"
  } >&2
  exit 1
}

# settle writes out what earlier steps left dirty in the page cache (the other tool's
# storage, the last round's deleted work): no timed build pays for another's writeback.
settle() { sync; }

# seconds LOG CMD... runs CMD with its output in LOG and prints its wall time.
seconds() {
  local log=$1 t0 t1
  shift
  settle
  t0=$(date +%s.%N)
  "$@" >"$log" 2>&1 || fail "$log" "$@"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

# measured LOG OUT CMD... is seconds under GNU time, which writes into OUT.rss the largest
# RSS (KiB) among CMD and the processes it waited for (pip, in both tools). OUT.self gets the
# peak RSS of CMD's own process (VmHWM, read every 0.1 s).
measured() {
  local log=$1 out=$2 t0 t1 tp pid= hwm=0 key val rc=0
  shift 2
  settle
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$out.rss" "$@" >"$log" 2>&1 &
  tp=$!
  while kill -0 "$tp" 2>/dev/null; do
    [[ -n $pid ]] || pid=$(pgrep -P "$tp" | head -n 1) || true
    if [[ -n $pid ]]; then
      while read -r key val _; do
        [[ $key == VmHWM: ]] && hwm=$val
      done 2>/dev/null <"/proc/$pid/status" || true
    fi
    sleep 0.1
  done
  wait "$tp" || rc=$?
  t1=$(date +%s.%N)
  ((rc == 0)) || fail "$log" "$@"
  echo "$hwm" >"$out.self"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}

# blob_mb DIR prints the size in MB of the blobs of the OCI layout DIR.
blob_mb() {
  find "$1/blobs" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.1f", s / 1e6}'
}

# dockerfile APP prints the Dockerfile a careful user writes for APP.
dockerfile() {
  cat <<EOF
FROM $base
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:\$PATH PORT=8080
RUN python -m venv /opt/venv
WORKDIR /app
EOF
  case $1 in
  uvlock) printf '%s\n' 'COPY requirements.lock.txt ./' \
    'RUN PIP_CERT=/run/host-ca.crt pip install --require-hashes --no-deps -r requirements.lock.txt' ;;
  *) printf '%s\n' 'COPY requirements.txt ./' 'RUN PIP_CERT=/run/host-ca.crt pip install -r requirements.txt' ;;
  esac
  echo 'COPY . .'
  if [[ $1 == django ]]; then echo 'RUN python manage.py collectstatic --noinput'; fi
  printf '%s\n' 'USER 65532:65532' 'EXPOSE 8080'
  case $1 in
  flask) echo 'CMD ["python", "app.py"]' ;;
  fastapi) echo 'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8080"]' ;;
  django) echo 'CMD ["gunicorn", "benchsite.wsgi", "--bind", "0.0.0.0:8080"]' ;;
  uvlock) echo 'CMD ["gunicorn", "inventory.app:app", "--bind", "0.0.0.0:8080"]' ;;
  esac
}

# The fresh-runner row needs --cache-repo; a registry of this run's own holds that cache.
cache_repo=
if "$pyship" build --help 2>&1 | grep -q -- '-cache-repo'; then
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$work/cache-registry"
  cat >"$work/cache-registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/cache-registry
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$work/cache-registry.yml" >"$work/cache-registry.log" 2>&1 </dev/null &
  registry_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 || fail "$work/cache-registry.log" docker-registry serve
  cache_repo=127.0.0.1:$port/bench-cache
fi

# uv, to export uvlock's lock for pip, only when that app runs.
if [[ " ${apps[*]} " == *" uvlock "* ]]; then
  python3 -m venv "$work/uv" >/dev/null
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$work/uv/bin/pip" install -q --disable-pip-version-check uv==0.13.9 \
    >"$work/uv.log" 2>&1 || fail "$work/uv.log" pip install uv
fi

declare -A t # t[app.tool.path] = space-separated samples

# round_pyship APP I times one round of pyship builds of APP.
round_pyship() {
  local app=$1 i=$2 d=$work/$1/pyship s
  rm -rf "$d"
  mkdir -p "$d"
  cp -a "bench/apps/$app" "$d/src"
  s=$(PYSHIP_CACHE_DIR=$d/cache measured "$d/cold.log" "$d/cold" "$pyship" build "$d/src" --oci-layout "$d/oci")
  t[$app.pyship.cold]+="$s "
  t[$app.pyship.rss]+="$(cat "$d/cold.rss") "
  t[$app.pyship.self]+="$(cat "$d/cold.self") "
  echo "# edit $i" >>"$d/src/${main[$app]}"
  s=$(PYSHIP_CACHE_DIR=$d/cache seconds "$d/edit.log" "$pyship" build "$d/src" --oci-layout "$d/oci")
  t[$app.pyship.edit]+="$s "
  s=$(PYSHIP_CACHE_DIR=$d/cache seconds "$d/noop.log" "$pyship" build "$d/src" --oci-layout "$d/oci")
  t[$app.pyship.noop]+="$s "
  PYSHIP_CACHE_DIR=$d/cache seconds "$d/size.log" "$pyship" build "$d/src" --oci-layout "$d/oci-size" >/dev/null
  t[$app.pyship.size]+="$(blob_mb "$d/oci-size") "
  if [[ -n $cache_repo ]]; then
    s=$(PYSHIP_CACHE_DIR=$d/fresh-cache seconds "$d/fresh.log" "$pyship" build "$d/src" \
      --cache-repo "$cache_repo/$app" --oci-layout "$d/oci-fresh")
    t[$app.pyship.fresh]+="$s "
  fi
}

# round_buildah APP I times one round of buildah builds of APP.
round_buildah() {
  local app=$1 i=$2 d=$work/$1/buildah s
  local bud=("${bah[@]}" bud --layers --tls-verify=false -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
    -f "$work/$app/Dockerfile" -t "localhost/bench/$app" "$d/src")
  buildah_reset
  rm -rf "$d"
  mkdir -p "$d"
  cp -a "bench/apps/$app" "$d/src"
  if [[ $app == uvlock ]]; then cp "$work/$app/requirements.lock.txt" "$d/src/"; fi
  s=$(measured "$d/cold.log" "$d/cold" "${bud[@]}")
  t[$app.buildah.cold]+="$s "
  t[$app.buildah.rss]+="$(cat "$d/cold.rss") "
  echo "# edit $i" >>"$d/src/${main[$app]}"
  s=$(seconds "$d/edit.log" "${bud[@]}")
  t[$app.buildah.edit]+="$s "
  s=$(seconds "$d/noop.log" "${bud[@]}")
  t[$app.buildah.noop]+="$s "
  "${bah[@]}" push "localhost/bench/$app" "oci:$d/oci-noop" >"$d/push.log" 2>&1 || fail "$d/push.log" buildah push
  t[$app.buildah.size]+="$(blob_mb "$d/oci-noop") "
  buildah_reset
}

for app in "${apps[@]}"; do
  mkdir -p "$work/$app"
  dockerfile "$app" >"$work/$app/Dockerfile"
  if [[ $app == uvlock ]]; then
    UV_CACHE_DIR=$work/uv-cache "$work/uv/bin/uv" export --directory "bench/apps/$app" --frozen --no-dev \
      --no-emit-project --format requirements-txt --no-header --quiet -o "$work/$app/requirements.lock.txt"
  fi
  if [[ -n $cache_repo ]]; then
    echo "compare: $app: filling the registry cache" >&2
    mkdir -p "$work/$app/seed"
    cp -a "bench/apps/$app" "$work/$app/seed/src"
    PYSHIP_CACHE_DIR=$work/$app/seed/cache seconds "$work/$app/seed/build.log" "$pyship" build "$work/$app/seed/src" \
      --cache-repo "$cache_repo/$app" --oci-layout "$work/$app/seed/oci" >/dev/null
    rm -rf "$work/$app/seed"
  fi
  for i in $(seq 1 "$runs"); do
    # The tools take turns going first, so neither always finds the page cache warmer.
    if ((i % 2)); then order=(pyship buildah); else order=(buildah pyship); fi
    for tool in "${order[@]}"; do
      echo "compare: $app round $i/$runs: $tool" >&2
      "round_$tool" "$app" "$i"
    done
  done
  # The image pyship built must answer: build (cached) and smoke-test it once.
  echo "compare: $app: pyship test" >&2
  PYSHIP_CACHE_DIR=$work/$app/pyship/cache seconds "$work/$app/test.log" "$pyship" test "$work/$app/pyship/src" >/dev/null
  rm -rf "$work/$app/pyship/cache" "$work/$app/pyship/fresh-cache"
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {if (NR) printf "%.2f", a[int((NR + 1) / 2)]}'; }

# row APP LABEL PYSHIP BUILDAH GOAL prints a line of the table. GOAL is the largest ratio that
# meets it, or with MB after it the largest value; an empty PYSHIP is n/a.
row() {
  local app=$1 label=$2 p=$3 b=$4 goal=$5 ratio=- met=n/a shown
  if [[ $goal == *MB ]]; then
    shown="<= ${goal%MB} MB"
    [[ -z $p ]] || met=$(awk -v p="$p" -v g="${goal%MB}" 'BEGIN {print (p <= g) ? "yes" : "no"}')
  else
    shown="<= ${goal}x"
    if [[ -n $p ]]; then
      ratio=$(awk -v p="$p" -v b="$b" 'BEGIN {printf "%.2f", p / b}')
      met=$(awk -v r="$ratio" -v g="$goal" 'BEGIN {print (r <= g) ? "yes" : "no"}')
    fi
  fi
  printf '%-8s %-22s %10s %10s %7s %-10s %s\n' "$app" "$label" "${p:-n/a}" "${b:--}" "$ratio" "$shown" "$met"
}

kib_to_mb() { awk '{printf "%.0f", $1 / 1024}'; }

commit=$(git rev-parse --short HEAD)
[[ -z $(git status --porcelain) ]] || commit+=" (uncommitted changes)"
echo "pyship $commit against $(buildah --version), $runs rounds"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs, work on $fs"
echo
printf '%-8s %-22s %10s %10s %7s %-10s %s\n' app path pyship buildah ratio goal met
for app in "${apps[@]}"; do
  bc=$(median <<<"${t[$app.buildah.cold]}")
  row "$app" "cold (s)" "$(median <<<"${t[$app.pyship.cold]}")" "$bc" 0.3
  row "$app" "edit (s)" "$(median <<<"${t[$app.pyship.edit]}")" "$(median <<<"${t[$app.buildah.edit]}")" 0.1
  row "$app" "noop (s)" "$(median <<<"${t[$app.pyship.noop]}")" "$(median <<<"${t[$app.buildah.noop]}")" 0.1
  row "$app" "fresh runner (s)" "$(median <<<"${t[$app.pyship.fresh]:-}")" "$bc" 0.15
  row "$app" "image (MB)" "$(median <<<"${t[$app.pyship.size]}")" "$(median <<<"${t[$app.buildah.size]}")" 0.9
  row "$app" "peak RSS, cold (MB)" "$(median <<<"${t[$app.pyship.rss]}" | kib_to_mb)" \
    "$(median <<<"${t[$app.buildah.rss]}" | kib_to_mb)" 150MB
  row "$app" "  pyship alone (MB)" "$(median <<<"${t[$app.pyship.self]}" | kib_to_mb)" "" 150MB
done
echo
echo "Medians of $runs rounds; ratio = pyship / buildah; fresh runner is to buildah's cold."
echo "cold: empty cache (pyship) or storage (buildah), the base pulled from the test bed's registry in both."
echo "image: compressed (the OCI layout's blobs). peak RSS (MiB): GNU time's %M, the largest of the"
echo "tool and the processes it waited for (pip among them); 'pyship alone': its own VmHWM."
[[ -n $cache_repo ]] || echo "fresh runner: n/a, this pyship's build has no --cache-repo flag."
echo "uvlock under buildah: pip install --require-hashes --no-deps of uv export's requirements."
echo "took $((SECONDS - start)) s"
