"""Workflow activities: each performs one side effect, idempotently, through
the services it is bound to at registration (api/worker.py), never the other
way round."""
