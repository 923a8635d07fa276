"""The MCP server the chatbot calls (streamable HTTP at /mcp): the endpoint
that authenticates and maps errors, the tools, and the guide text the model reads."""
