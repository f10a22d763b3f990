#!/usr/bin/env bash
# Records a release in the tree, for the action to trust: copies OUTDIR/SHA256SUMS (from
# release/build.sh) to release/checksums/VERSION.sha256, and writes release/VERSION with
# the version, the hash of the Go sources (release/source-hash.sh) and the repository
# whose GitHub release holds the binaries. Commit both, then tag that commit VERSION.
#
#   release/record.sh v1.2.3 [OUTDIR]
#
# PYSHIP_RELEASE_REPOSITORY (default pyship/pyship) names the repository, OWNER/NAME.
set -euo pipefail

version=${1:-}
out=${2:-dist}
repository=${PYSHIP_RELEASE_REPOSITORY:-pyship/pyship}
if ! [[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "usage: release/record.sh vX.Y.Z[-PRERELEASE] [OUTDIR] (got \"$version\")" >&2
  exit 2
fi
if ! [[ $repository =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]; then
  echo "release/record.sh: PYSHIP_RELEASE_REPOSITORY is \"$repository\", not OWNER/NAME" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
sums=$out/SHA256SUMS
if [ ! -f "$sums" ]; then
  echo "release/record.sh: no $sums: run release/build.sh $version $out first" >&2
  exit 1
fi
# Only this version's binaries, each as sha256sum writes it, each still matching.
if ! awk -v v="$version" '
    !($1 ~ /^[0-9a-f]+$/ && length($1) == 64 && NF == 2 && ($2 == "pyship-" v "-linux-amd64" || $2 == "pyship-" v "-linux-arm64")) { bad = 1 }
    END { exit bad || NR == 0 }' "$sums"; then
  echo "release/record.sh: $sums lists other files than pyship-$version-linux-amd64 and -arm64" >&2
  exit 1
fi
(cd "$out" && sha256sum --quiet --strict -c SHA256SUMS) || {
  echo "release/record.sh: the files in $out do not match $sums" >&2
  exit 1
}
# The hash is of the sources as committed: the binaries must come from those.
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  changed=$(git -C "$repo" status --porcelain --untracked-files=all -- '*.go' go.mod go.sum)
  if [ -n "$changed" ]; then
    printf 'release/record.sh: Go sources differ from the last commit; commit them and build again:\n%s\n' "$changed" >&2
    exit 1
  fi
fi
source=$("$repo/release/source-hash.sh" "$repo")
mkdir -p "$repo/release/checksums"
cp "$sums" "$repo/release/checksums/$version.sha256"
cat >"$repo/release/VERSION" <<END
# The last release, written by release/record.sh. The action downloads its binary when its
# own Go sources hash to "source" (release/source-hash.sh), checked against
# release/checksums/VERSION.sha256.
version $version
source $source
repository $repository
END
echo "recorded $version: release/VERSION and release/checksums/$version.sha256" >&2
