"""The API's Cassandra tables: one typed repository per table family, over the API's lazily connected session."""
