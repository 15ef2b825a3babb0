#!/usr/bin/env bash
# Makes sure an Elasticsearch node can be started for the elasticsearch adapter's tests and
# benchmark (test/support/elasticsearch-node.ts starts and stops its own nodes on free
# loopback ports). Idempotent:
#   - the 8.19.21 integ-test-zip distribution from Maven Central (fetched with mvn, about
#     107 MB), unpacked once into ${SWITCHBOARD_CACHE:-~/.cache/switchboard}/elasticsearch
#     and reused when present — outside the clone, so a fresh clone (CI) finds it;
#   - the system user it runs as ($SWITCHBOARD_ES_USER, default switchboard-es):
#     Elasticsearch refuses to run as root.
# Needs Java 17 (Debian's openjdk-17, or ES_JAVA_HOME) to run, and mvn to fetch; root (or
# sudo) only to create the user.
set -euo pipefail
VERSION="8.19.21"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip"
CACHE="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
HOME_DIR="$CACHE/elasticsearch/elasticsearch-$VERSION"
ES_USER="${SWITCHBOARD_ES_USER:-switchboard-es}"

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if [ ! -x "$HOME_DIR/bin/elasticsearch" ]; then
  if ! command -v mvn >/dev/null 2>&1; then
    echo "install-elasticsearch: fetching $ARTIFACT needs Maven (Debian package maven)" >&2
    exit 1
  fi
  echo "install-elasticsearch: fetching $ARTIFACT from Maven Central into $CACHE/elasticsearch" >&2
  mkdir -p "$CACHE/elasticsearch"
  work="$(mktemp -d "$CACHE/elasticsearch/download.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$work" -Dmdep.overWriteReleases=true
  zip="$work/elasticsearch-$VERSION.zip"
  [ -f "$zip" ] || { echo "install-elasticsearch: mvn did not produce $zip" >&2; exit 1; }
  # Unpacked beside the final place, then renamed: an interrupted run leaves no half tree.
  if command -v unzip >/dev/null 2>&1; then
    unzip -q "$zip" -d "$work/unpacked"
  else
    mkdir -p "$work/unpacked"
    (cd "$work/unpacked" && jar xf "$zip")
    chmod +x "$work/unpacked/elasticsearch-$VERSION"/bin/* "$work/unpacked/elasticsearch-$VERSION"/jdk/bin/* 2>/dev/null || true
  fi
  rm -rf "$HOME_DIR"
  mv "$work/unpacked/elasticsearch-$VERSION" "$HOME_DIR"
fi

# Elasticsearch refuses to run as root: a system user without a login runs it.
if ! id -u "$ES_USER" >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "install-elasticsearch: not root and no sudo; create a system user $ES_USER yourself (useradd --system $ES_USER)" >&2
    exit 1
  fi
  echo "install-elasticsearch: creating system user $ES_USER" >&2
  $SUDO useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
fi

# The node reads its installation as that user: every parent must be traversable, and the
# tree readable (it is not written: each node gets its own config, data, logs and tmp).
# Parents get o+x only (enter, not list), and only where they lack it.
dir="$(dirname "$HOME_DIR")"
while [ "$dir" != "/" ]; do
  if [ "$(stat -c %A "$dir" | cut -c10)" != "x" ] && [ "$(stat -c %A "$dir" | cut -c10)" != "t" ]; then
    echo "install-elasticsearch: letting $ES_USER traverse $dir (chmod o+x)" >&2
    $SUDO chmod o+x "$dir"
  fi
  dir="$(dirname "$dir")"
done
$SUDO chmod -R o+rX "$HOME_DIR"

java_home="${ES_JAVA_HOME:-}"
if [ -z "$java_home" ]; then
  for candidate in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64; do
    [ -x "$candidate/bin/java" ] && java_home="$candidate" && break
  done
fi
if [ -z "$java_home" ]; then
  echo "install-elasticsearch: Elasticsearch $VERSION runs on Java 17: install Debian's openjdk-17-jdk-headless or set ES_JAVA_HOME" >&2
  exit 1
fi
echo "install-elasticsearch: Elasticsearch $VERSION in $HOME_DIR, runs as $ES_USER on $java_home" >&2
