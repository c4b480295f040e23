"""gRPC API server and its services."""
