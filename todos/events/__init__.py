"""Events: their schema, the transactional outbox, the relay that publishes
it through Dapr pub/sub, and the audit log and task history they feed."""
