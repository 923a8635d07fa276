"""Workflow activities: each performs one side effect, idempotently, by
calling the service layer (never the other way round)."""
