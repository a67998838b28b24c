# A Kafka broker for the streaming tests: the org.apache.kafka:kafka_2.13 jars and their
# dependencies (and kafka-tools, for its console consumer) from Maven Central, copied into $SETUP_CACHE/kafka/libs. The tests start a
# throwaway single-node KRaft broker from them (test/support/kafka.ts); Java 17 runs it.
INFERD_KAFKA_VERSION="${INFERD_KAFKA_VERSION:-4.1.0}"
INFERD_KAFKA_STAMP="$INFERD_KAFKA_VERSION+tools"

ensure_kafka() {
  local dir="$SETUP_CACHE/kafka" libs="$SETUP_CACHE/kafka/libs"
  local stamp_file="$dir/.version"
  if [[ -f $stamp_file && "$(cat "$stamp_file")" == "$INFERD_KAFKA_STAMP" ]] && compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then
    setup_say "kafka: $INFERD_KAFKA_VERSION jars in place ($libs)"
    return 0
  fi
  command -v java >/dev/null || apt_install openjdk-17-jre-headless || { echo "[setup] kafka needs Java 17: apt-get install openjdk-17-jre-headless" >&2; return 1; }
  command -v mvn >/dev/null || apt_install maven || { echo "[setup] kafka jars are fetched with Maven: apt-get install maven" >&2; return 1; }
  mkdir -p "$dir"
  rm -rf "$libs"
  cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>inferd.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$INFERD_KAFKA_VERSION</version>
    </dependency>
    <!-- The console consumer: a reference read_committed reader for the exactly-once tests. -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$INFERD_KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  setup_say "kafka: fetching kafka_2.13 $INFERD_KAFKA_VERSION and its dependencies from Maven Central"
  if ! (cd "$dir" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"); then
    echo "[setup] kafka: mvn dependency:copy-dependencies failed (needs Maven Central)" >&2
    return 1
  fi
  echo "$INFERD_KAFKA_STAMP" >"$stamp_file"
  setup_say "kafka: $(ls "$libs" | wc -l) jars in $libs"
}
