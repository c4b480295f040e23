"""Files: resumable, checksummed uploads into S3, their sessions and records in Cassandra."""
