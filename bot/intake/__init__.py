"""Signals from the systems that see them first: complaints recorded through the intake API."""
