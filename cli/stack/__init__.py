"""The local stack that `chat4all stack` manages: real Kafka, Cassandra, S3Proxy and Redis processes on 127.0.0.1."""
