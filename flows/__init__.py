"""Prefect flows: they sequence the plain functions of `handover` and `redaction`."""
