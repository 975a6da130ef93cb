"""The `handover` console script, one module per command group."""
