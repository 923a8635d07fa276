"""The local stack: one runner for `./task up` and for the integration tests.

It installs what the stack needs (Dapr binaries built from the pinned Go
module, Kafka jars from Maven Central) into a cache outside the repository and
supervises the processes: PostgreSQL, Dapr placement and scheduler, daprd, the
app, and in the `kafka` profile a single-node KRaft broker.
"""
