"""Faust app, its topics and the worker's wiring (the records on the topics are chat4all/wire.py)."""
