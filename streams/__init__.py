"""Faust app, topics and the records that travel on them."""
