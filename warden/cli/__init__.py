"""The ``warden`` command: one module per command group."""
