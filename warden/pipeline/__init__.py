"""The request pipeline: one module per stage, one Stage protocol, one runner."""
