"""The toolchain's pinned inputs (versions.toml, the Go module for Dapr, the Maven pom for Kafka,
one hashed lock per Python tool, the chart's CRD schemas) and, in delivery/, the delivery checks."""
