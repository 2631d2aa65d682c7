"""The HTTP routes, one module per Open WebUI router."""
