"""Real servers for tests, demos and benchmarks: fake upstreams that speak provider protocols."""
