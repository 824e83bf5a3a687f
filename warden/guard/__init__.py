"""Guardrails: scanners that look at prompts and answers, and policies that act on what they find."""
