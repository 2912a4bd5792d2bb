"""Builders, one module each behind the ``Builder`` Protocol in base.py, registered by name
in choice.py (``BUILDERS``, ``choose``, ``get``).

This package's own module imports nothing: a submodule (venvcheck, venvcreate, ...) then
imports alone, without every builder and the definition model behind them.
"""
