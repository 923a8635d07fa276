"""The domain: tasks, recurring series, reminders and events, each a package
of its models and rules, on a shared core (settings, database, errors, logs,
metrics, users, field types); the Dapr gateways and the after-commit effects
beside them."""
