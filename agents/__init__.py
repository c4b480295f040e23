"""Faust agents: router, connectors and status tracker."""
