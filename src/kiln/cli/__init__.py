"""The ``kiln`` command line: one module per command group (parse -> core -> print)."""
