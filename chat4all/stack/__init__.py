"""The local stack: real Kafka, Cassandra, S3Proxy and Redis processes on 127.0.0.1."""
