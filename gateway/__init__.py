"""Realtime gateway: live events to clients over WebSocket and a gRPC stream, sessions in Redis."""
