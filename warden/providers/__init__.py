"""Providers: one module per upstream kind, each a plugin implementing ``Provider``."""
