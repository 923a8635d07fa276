"""The FastAPI apps of both roles: the composition root (app.py), REST routes,
the MCP server, the Dapr job callback and subscriptions, auth, problem JSON,
metrics and the background worker."""
