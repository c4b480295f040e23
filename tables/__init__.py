"""Changelog-backed Faust tables and the pure logic they hold."""
