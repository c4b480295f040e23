"""Tests of the gRPC API (real server subprocess on the local stack) and its pure units."""
