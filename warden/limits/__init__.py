"""Limits and budgets: requests and tokens per minute, spend per period, reserved before a
request and settled after it, counted in this process or shared through Redis."""
