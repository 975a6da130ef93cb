"""Redaction: the only place that decides which personal fields leave the shop."""
