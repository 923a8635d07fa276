#!/bin/sh
# Broker and controller in one process; clients reach it as $KAFKA_ADVERTISED_HOST:9092. The
# log directory is formatted on first start.
set -eu
data=/var/lib/kafka/data
mkdir -p "$data"
cat > /tmp/server.properties <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://${KAFKA_ADVERTISED_HOST}:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=12
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPERTIES
set -- -Xms256m -Xmx512m -Dlog4j2.configurationFile=/opt/kafka/log4j2.xml -cp '/opt/kafka/libs/*'
if [ ! -f "$data/meta.properties" ]; then
    java "$@" kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID}" -c /tmp/server.properties
fi
exec java "$@" kafka.Kafka /tmp/server.properties
