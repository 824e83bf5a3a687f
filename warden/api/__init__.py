"""The HTTP surface: the OpenAI-compatible API, the admin API, health endpoints."""
