#!/usr/bin/env bash
# Makes sure what the kafka adapter's tests and `npm run bench:audit` start is there:
# - the Apache Kafka 4.4.0 jars (one KRaft node runs from them with `java -cp 'DIR/*'`),
#   copied from Maven Central with mvn into ${SWITCHBOARD_CACHE:-~/.cache/switchboard}/kafka/libs
#   (45 jars, about 43 MB, about 20 s cold) and reused when present — outside the clone, so a
#   fresh clone (CI) finds them;
# - kcat (Debian package kcat), which reads a topic independently of our client.
# Idempotent. Needs java (17 or later) and mvn to copy the jars, root (or sudo) only when kcat
# is missing. test/support/kafka-broker.ts starts and stops the broker; nothing runs here.
set -euo pipefail
cd "$(dirname "$0")"
KAFKA_VERSION="4.4.0"
CACHE="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}/kafka"
LIBS="$CACHE/libs"
STAMP="$CACHE/installed-$KAFKA_VERSION"

bash ./install-debian-tool.sh kcat kcat

if [ -f "$STAMP" ] && ls "$LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
  exit 0
fi

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-kafka: $tool is missing; install Debian's openjdk-17-jre-headless and maven, then run this again" >&2
    exit 1
  fi
done

echo "install-kafka: copying the Kafka $KAFKA_VERSION jars from Maven Central into $LIBS" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A pom-packaged project whose runtime dependencies are the broker and a logging binding:
# slf4j 2.x must be pinned, or the broker's log4j2 binding finds no provider and logs nothing
# (and the readiness line is never seen).
cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.switchboard</groupId>
  <artifactId>kafka-test-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.3</version></dependency>
  </dependencies>
</project>
EOF
rm -rf "$LIBS.partial"
mkdir -p "$LIBS.partial"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$LIBS.partial"
# The kafka jar itself is the dependency's artifact, copied with the others.
if ! ls "$LIBS.partial"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1; then
  echo "install-kafka: mvn did not copy kafka_2.13-$KAFKA_VERSION.jar; see its output above" >&2
  exit 1
fi
rm -rf "$LIBS"
mv "$LIBS.partial" "$LIBS"
touch "$STAMP"
echo "install-kafka: $(ls "$LIBS" | wc -l) jars in $LIBS" >&2
