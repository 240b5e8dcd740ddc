"""KairosDB-compatible Cassandra backend: the byte codec (``codec``) and the datastore."""
