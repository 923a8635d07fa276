"""A single-node KRaft Kafka broker from Maven Central jars (no Docker).

`process()` formats the log directory once and runs the broker on loopback, from
the jars the toolchain fetched (org.apache.kafka:kafka_2.13, its dependencies and
a log4j2 backend: tools/kafka/pom.xml); `create_topics()` makes the event topics.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from devstack import toolchain
from devstack.ports import is_listening
from devstack.process import ManagedProcess

EVENT_TOPICS = ("task-events", "reminders", "task-updates")
# One dead-letter topic per subscription (components/common/subscriptions.yaml).
DEAD_LETTER_TOPICS = tuple(f"{topic}-dlq" for topic in EVENT_TOPICS)
TOPICS = EVENT_TOPICS + DEAD_LETTER_TOPICS
PARTITIONS = 12
RETENTION_MS = 7 * 24 * 3600 * 1000

LOG4J2 = """\
<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def process(data_dir: Path, port: int, controller_port: int, log_path: Path) -> ManagedProcess:
    libs = toolchain.ensure(toolchain.KAFKA)
    data_dir.mkdir(parents=True, exist_ok=True)
    properties = data_dir / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={data_dir / 'logs'}",
                f"num.partitions={PARTITIONS}",
                f"log.retention.ms={RETENTION_MS}",
                "offsets.topic.replication.factor=1",
                # 50 partitions (the default) make a fresh broker slow to become
                # group coordinator; one node needs few.
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "",
            ]
        )
    )
    log4j = data_dir / "log4j2.xml"
    log4j.write_text(LOG4J2)
    java = ["java", "-Xms256m", "-Xmx768m", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
    if not (data_dir / "logs" / "meta.properties").exists():
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the tool would read a leading "-" as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit("Formatting the Kafka log directory failed:\n" + result.stdout + result.stderr)
    return ManagedProcess(
        "kafka",
        [*java, "kafka.Kafka", str(properties)],
        log_path=log_path,
        ready=lambda: is_listening(port) and _metadata_ready(port),
        describe=f"kafka on 127.0.0.1:{port}",
    )


def _metadata_ready(port: int) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    metadata = admin.list_topics(timeout=2)
    return bool(metadata.brokers)


def create_topics(port: int) -> None:
    """Topics with 12 partitions and 7-day retention (idempotent)."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [t for t in TOPICS if t not in existing]
    if not wanted:
        return
    futures = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=PARTITIONS,
                replication_factor=1,
                config={"retention.ms": str(RETENTION_MS)},
            )
            for topic in wanted
        ]
    )
    for future in futures.values():
        future.result(timeout=30)
