"""The stages of a run: extract, validate, decide, seal, deliver, publish."""
