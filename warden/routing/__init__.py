"""Routing and resilience: strategies, circuit breakers, the attempt loop, health checks."""
