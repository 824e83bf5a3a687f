"""Observability: the Record of each request, the recorder, metrics, traces, pricing."""
