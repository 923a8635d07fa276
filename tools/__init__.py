"""The pinned inputs of the toolchain (versions.toml, the Go module dapr/, the Maven pom kafka/,
the Python tools' locks, the chart's CRD models) and, in delivery/, the delivery checks."""
