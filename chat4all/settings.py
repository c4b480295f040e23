"""The one settings object every Chat4All process reads (env vars prefixed CHAT4ALL_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _level_name(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Cassandra consistency level names (cassandra.ConsistencyLevel) each kind of statement accepts;
# chat4all/cassandra.py puts them in the driver's execution profiles. A bad name stops start-up.
ReadConsistency = Annotated[
    Literal["ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "LOCAL_ONE", "SERIAL", "LOCAL_SERIAL"],
    BeforeValidator(_level_name),
]
WriteConsistency = Annotated[
    Literal["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"],
    BeforeValidator(_level_name),
]
SerialConsistency = Annotated[Literal["SERIAL", "LOCAL_SERIAL"], BeforeValidator(_level_name)]


class Settings(BaseSettings):
    """Chat4All settings. Each field is read from ``CHAT4ALL_<FIELD_NAME>`` (upper case).

    The README's settings table is generated from this class (``chat4all settings``):
    keep the field descriptions short and true.
    """

    model_config = SettingsConfigDict(env_prefix="CHAT4ALL_", extra="ignore")

    # --- general -------------------------------------------------------------
    dev_mode: bool = Field(
        True,
        description="Dev mode (the local stack): the API may generate its JWT secret, use the local S3 secret and serve without TLS. Set false in production.",
    )
    log_level: str = Field("INFO", description="Log level of every process.")
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    tracing_enabled: bool = Field(
        True,
        description="OpenTelemetry traces of the API and the workers, exported over OTLP; false: no spans at all.",
    )
    tracing_otlp_endpoint: str = Field(
        "http://127.0.0.1:4317", description="OTLP/gRPC endpoint the processes export their spans to."
    )
    tracing_sample_ratio: float = Field(
        # 1 %: 3 whole traces a second at 300 msg/s, at a cost within the noise of the
        # pipeline's CPU per message (docs/observability.md); 1.0 for a demonstration.
        0.01,
        ge=0.0,
        le=1.0,
        description="Share of traces kept, decided where a trace starts (an API call); every later hop follows that decision.",
    )

    # --- local stack -----------------------------------------------------------
    stack_dir: Path = Field(
        REPO_ROOT / ".stack", description="Folder for the local stack's jars, data, logs and pid files."
    )
    stack_lib_dir: Path = Field(
        REPO_ROOT / ".stack" / "lib", description="Folder of the stack's jars (shared by stack instances)."
    )
    kafka_heap: str = Field("512m", description="Kafka JVM heap (-Xmx and -Xms).")
    cassandra_heap: str = Field("1024m", description="Cassandra JVM heap (-Xmx and -Xms).")
    s3_heap: str = Field("256m", description="S3Proxy JVM heap.")
    stack_start_timeout: float = Field(
        240.0, description="Seconds `stack up` waits for each server to answer."
    )
    jaeger_otlp_grpc_port: int = Field(4317, description="Local stack: Jaeger's OTLP/gRPC port.")
    jaeger_otlp_http_port: int = Field(4318, description="Local stack: Jaeger's OTLP/HTTP port.")
    jaeger_query_port: int = Field(16686, description="Local stack: Jaeger's query API and UI port.")
    jaeger_max_traces: int = Field(
        20000, description="Local stack: traces Jaeger keeps in memory; the oldest go first."
    )
    prometheus_port: int = Field(
        9090, description="Port of the local stack's Prometheus (web UI and query API)."
    )
    prometheus_retention_time: str = Field(
        "7d",
        description="Local Prometheus: samples older than this are deleted (--storage.tsdb.retention.time).",
    )
    prometheus_retention_size: str = Field(
        "512MB",
        description="Local Prometheus: the oldest blocks are deleted once its data exceeds this (--storage.tsdb.retention.size).",
    )
    prometheus_scrape_interval_seconds: float = Field(
        5.0,
        description="Local Prometheus: how often it scrapes every target and evaluates the alert rules (s).",
    )
    metrics_targets_dir: Path | None = Field(
        None,
        description="Folder of Prometheus file service-discovery targets each API and worker writes while it runs; unset: <stack_dir>/prometheus-targets.",
    )
    metrics_targets_prune_seconds: float = Field(
        10.0,
        description="How often each API and worker removes the targets of processes that are gone (a SIGKILLed worker's) from metrics_targets_dir (s).",
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_host: str = Field("127.0.0.1", description="Kafka broker host.")
    kafka_port: int = Field(9092, description="Kafka broker port.")
    kafka_controller_port: int = Field(9093, description="Kafka KRaft controller port.")
    topic_partitions: int = Field(
        12, description="Partitions of every keyed topic; the Faust app uses the same number."
    )
    replication_factor: int = Field(1, description="Replication factor of topics (and changelogs).")
    messages_retention_hours: int = Field(24 * 7, description="Retention of `messages` and `status-updates`.")
    outbound_retention_hours: int = Field(24 * 3, description="Retention of the `<channel>-outbound` topics.")

    # --- Cassandra -------------------------------------------------------------
    cassandra_host: str = Field("127.0.0.1", description="Cassandra contact point.")
    cassandra_port: int = Field(9042, description="Cassandra native protocol port.")
    cassandra_storage_port: int = Field(7000, description="Cassandra inter-node storage port (local stack).")
    cassandra_jmx_port: int = Field(
        7199,
        description="Cassandra JMX port of the local stack, bound to 127.0.0.1 only and without authentication (nodetool).",
    )
    cassandra_local_dc: str = Field("datacenter1", description="Cassandra local datacenter name.")
    cassandra_keyspace: str = Field("chat4all", description="Keyspace name.")
    cassandra_replication_factor: int = Field(1, description="Keyspace replication factor.")
    cassandra_read_consistency: ReadConsistency = Field(
        "LOCAL_QUORUM",
        description="Consistency level of every Cassandra read of the API and the workers (the driver's default execution profile).",
    )
    cassandra_write_consistency: WriteConsistency = Field(
        "LOCAL_QUORUM",
        description="Consistency level of every Cassandra write, batch and lightweight-transaction commit of the API and the workers.",
    )
    cassandra_serial_consistency: SerialConsistency = Field(
        "LOCAL_SERIAL",
        description="Serial consistency of lightweight transactions (the Paxos phase of IF NOT EXISTS / IF ... writes).",
    )

    # --- S3 --------------------------------------------------------------------
    s3_host: str = Field("127.0.0.1", description="S3 endpoint host.")
    s3_port: int = Field(9000, description="S3 endpoint port.")
    s3_secure: bool = Field(False, description="Use https for S3.")
    s3_access_key: str = Field("chat4all", description="S3 access key.")
    s3_secret_key: SecretStr = Field(
        SecretStr("chat4all-local-secret"),
        description="S3 secret key (local stack default; set it in production).",
    )
    s3_region: str = Field("us-east-1", description="S3 region used for signing.")
    s3_bucket: str = Field("chat4all-files", description="Bucket for uploaded files.")

    # --- Redis -----------------------------------------------------------------
    redis_host: str = Field("127.0.0.1", description="Redis host.")
    redis_port: int = Field(6379, description="Redis port.")
    redis_db: int = Field(0, description="Redis database number.")

    # --- Faust workers ---------------------------------------------------------
    app_id: str = Field("chat4all", description="Faust application id (consumer group and changelog prefix).")
    web_port: int = Field(6066, description="Faust web port of a worker (/health, /metrics, tables).")
    web_bind: str = Field(
        "127.0.0.1",
        description="Interface a worker's web server listens on (faust's web_bind); 0.0.0.0 for every interface.",
    )
    web_host: str = Field(
        "127.0.0.1",
        description="Address other workers and Prometheus use to reach this worker's web server (faust's web_host; canonical URL http://web_host:web_port).",
    )
    operator_token: SecretStr | None = Field(
        None,
        description="Bearer token the worker's operator endpoints (POST /connectors/faults) and inspector pages (/ui/) require when set; unset, they are open in dev mode and off outside it.",
    )
    ui_show_content: bool = Field(
        False,
        description="Whether the table inspector (/ui/ on the worker's web server) shows message content; hidden by default.",
    )
    data_dir: Path = Field(
        REPO_ROOT / ".stack" / "worker-data", description="Faust data dir (RocksDB); one per worker."
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Faust processing guarantee."
    )
    broker_session_timeout: float = Field(
        10.0, description="Kafka consumer session timeout (s): how fast a dead worker's partitions move."
    )
    broker_heartbeat_interval: float = Field(3.0, description="Kafka consumer heartbeat interval (s).")
    rocksdb_memory_mb: int = Field(
        64,
        description="Worker: RocksDB memory of all its tables together (MiB): one block cache, which the memtables are charged to.",
    )
    rocksdb_write_buffer_mb: int = Field(
        24,
        description="Worker: of rocksdb_memory_mb, what memtables of all tables may hold before RocksDB flushes them (MiB).",
    )
    rocksdb_wal: bool = Field(
        False,
        description="Worker: write RocksDB's write-ahead log. Off: a crash loses only unflushed table writes, which recovery reads again from the changelogs.",
    )
    dedup_retention_hours: int = Field(24, description="How long the router remembers a message id.")
    connector_send_error_rate: float = Field(
        0.0, description="Failure injection: share of connector sends that fail (0..1)."
    )
    connector_outage: bool = Field(
        False, description="Failure injection: every connector send fails (an outage)."
    )
    connector_max_attempts: int = Field(
        5, description="Connector send attempts before the recipient is FAILED."
    )
    breaker_failure_threshold: int = Field(
        5, description="Consecutive failures that open a connector's circuit breaker."
    )
    breaker_reset_timeout: float = Field(5.0, description="Seconds an open breaker waits before HALF_OPEN.")
    delivered_delay_ms: tuple[int, int] = Field(
        (100, 500), description="Simulated delay to DELIVERED (min,max ms)."
    )
    read_delay_ms: tuple[int, int] = Field(
        (2000, 5000), description="Simulated delay from DELIVERED to READ (min,max ms)."
    )
    connector_backoff_ms: tuple[int, int] = Field(
        (20, 1000),
        description="Connector retry backoff: first and largest delay (ms), exponential with jitter.",
    )
    schedule_tick_ms: int = Field(
        100,
        description="How often a connector checks its durable schedule for due DELIVERED/READ events (ms).",
    )
    router_cache_seconds: float = Field(
        2.0, description="How long the router caches a conversation's participants and a user's channels (s)."
    )
    cassandra_concurrency: int = Field(
        64, description="Most Cassandra writes a worker keeps in flight at once."
    )
    topic_prefix: str = Field(
        "",
        description="Prefix of every topic name (pipeline, API, gateway, dlq): tests and benchmarks use it to isolate a run.",
    )
    cassandra_retry_max_seconds: float = Field(
        5.0,
        description="Longest pause between retries while Cassandra is unreachable (s); retries never stop.",
    )
    agent_max_in_flight: int = Field(
        512,
        description="Events an agent keeps in flight (Cassandra writes, broker acks) before it stops pulling more.",
    )
    producer_linger_ms: int = Field(
        10, description="Worker producer linger (ms): records sent within it share one produce request."
    )
    gc_freeze: bool = Field(
        True,
        description="Worker: once started, move the start-up heap into Python's permanent GC generation, so that collections on the event loop no longer walk it.",
    )
    producer_buffer_max_messages: int = Field(
        2000,
        description="Worker: changelog records faust may hold unsent before its agents pause to let the producer catch up (faust's default is 100).",
    )
    cassandra_batch_linger_ms: float = Field(
        10.0,
        description="Worker: how long a Cassandra write waits for others bound to the same replicas, to share one unlogged batch (ms).",
    )
    consumer_fetch_min_bytes: int = Field(
        16384,
        description="Worker: bytes a fetch waits for before the broker answers (up to consumer_fetch_max_wait_ms); larger fetches, fewer round trips.",
    )
    producer_drain_by_broker: bool = Field(
        True,
        description="Worker and API: a produce request takes every waiting batch of its broker once one batch is ready (as Kafka's Java producer), not only the batches whose linger ran out.",
    )
    consumer_fetch_max_wait_ms: int = Field(
        20,
        description="Worker: longest a fetch waits for consumer_fetch_min_bytes (ms); it also bounds the latency this adds.",
    )
    cassandra_batch_max_writes: int = Field(
        32,
        description="Worker: most writes in one unlogged batch (values are also capped at 24 KiB per batch).",
    )

    # --- API -------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="gRPC API bind host.")
    api_port: int = Field(50051, description="gRPC API port.")
    api_metrics_port: int = Field(9464, description="Prometheus port of the API.")
    jwt_secret: SecretStr | None = Field(
        None, description="JWT signing secret, at least 32 bytes; required unless dev_mode."
    )
    jwt_issuer: str = Field("chat4all", description="JWT issuer claim.")
    jwt_ttl_seconds: int = Field(3600, description="Access token lifetime.")
    login_failure_threshold: int = Field(
        5,
        description="Failed logins of one username before each further attempt must wait (0 = no username throttle).",
    )
    login_backoff_seconds: float = Field(
        1.0,
        description="Wait after the failed login that reaches the threshold (s); doubles with each further failure.",
    )
    login_backoff_max_seconds: float = Field(
        300.0, description="Longest wait between login attempts of one username (s)."
    )
    login_failure_window_seconds: float = Field(
        900.0,
        description="A username's failed logins are forgotten this long after the last one and its wait (s); a successful login forgets them at once.",
    )
    auth_address_rate_per_second: float = Field(
        20.0,
        description="Login and Register attempts one client address may make per second, in Redis (token bucket; 0 = no limit).",
    )
    auth_address_burst: int = Field(
        200,
        description="Login and Register attempts one client address may make at once (the bucket's size).",
    )
    trusted_proxy_header: str | None = Field(
        None,
        description="Metadata header (e.g. x-forwarded-for) whose last address a trusted proxy in front of the API sets to the client's; unset: the peer address.",
    )
    password_hash_threads: int = Field(
        2,
        description="Threads of the API's own argon2 pool (64 MiB each while hashing), apart from the default executor.",
    )
    password_hash_queue: int = Field(
        32,
        description="Password hashes that may wait for that pool; more Login/Register calls get RESOURCE_EXHAUSTED with retry-after.",
    )
    password_hash_per_address: int = Field(
        8,
        description="Password hashes one client address may have running or waiting in one API process; more get RESOURCE_EXHAUSTED with retry-after.",
    )
    api_cursor_secret: SecretStr | None = Field(
        None,
        description="Key (32+ bytes) that signs page tokens (HMAC-SHA256); unset: derived from the JWT secret, so API processes sharing it accept each other's.",
    )
    rate_limit_per_second: float = Field(20.0, description="SendMessage token-bucket refill rate per user.")
    rate_limit_burst: int = Field(100, description="SendMessage token-bucket size per user.")
    max_content_chars: int = Field(4096, description="Longest message content accepted.")
    api_max_message_bytes: int = Field(
        8 * 1024**2, description="Largest gRPC message the API receives or sends (fits 4 MiB file chunks)."
    )
    api_storage_timeout_seconds: float = Field(
        5.0, description="Longest wait for one Cassandra statement or Redis call in the API (s)."
    )
    api_publish_timeout_seconds: float = Field(
        5.0, description="Longest wait for Kafka to acknowledge an event the API publishes (s)."
    )
    api_grace_seconds: float = Field(
        5.0, description="On SIGTERM, seconds the API lets in-flight calls finish."
    )
    api_producer_linger_ms: int = Field(
        1,
        description="API producer linger (ms): a lone send waits this long for company; events arriving while a request is out are batched anyway.",
    )
    api_token_cache_seconds: float = Field(
        1.0,
        description="How long an API process reuses a token check (signature, revocation); a revocation through another API process applies here within it (0 = every call).",
    )
    rate_limit_lease_max: int = Field(
        10,
        description="Most SendMessage tokens an API process takes from a user's Redis bucket at once, spent within 1 s (1 = a Redis call per message).",
    )
    api_idempotency_cache_seconds: int = Field(
        60,
        description="How long Redis answers a client_message_id retry; later retries are answered from Cassandra (client_messages).",
    )
    api_max_inflight_sends: int = Field(
        2000,
        description="SendMessage calls one API process works on at once; more get RESOURCE_EXHAUSTED with retry-after.",
    )
    api_admission_max_lag: int = Field(
        5000,
        description="SendMessage gets RESOURCE_EXHAUSTED while the router group (app_id) is this many `messages` behind (0 = no lag check).",
    )
    api_admission_poll_seconds: float = Field(
        1.0, description="How often the API reads the router group's lag on `messages` from Kafka (s)."
    )
    api_max_concurrent_streams: int = Field(
        256,
        description="gRPC calls (HTTP/2 streams) one client connection may have open at once; more wait at the client.",
    )
    api_keepalive_seconds: float = Field(
        60.0,
        description="The API pings a client connection after this long without traffic (s), to find dead peers of long streams.",
    )
    api_keepalive_timeout_seconds: float = Field(
        20.0,
        description="A client connection that does not answer a keepalive ping within this long is closed (s).",
    )
    api_min_client_ping_seconds: float = Field(
        10.0,
        description="Shortest interval between a client's keepalive pings the API tolerates (s); a client pinging faster is disconnected (GOAWAY too_many_pings).",
    )
    api_max_connection_idle_seconds: float = Field(
        300.0,
        description="A client connection with no call open for this long is closed (GOAWAY; the client reconnects on its next call) (s; 0 = never).",
    )

    # --- files -----------------------------------------------------------------
    max_file_bytes: int = Field(2 * 1024**3, description="Largest file accepted (bytes).")
    upload_session_ttl_seconds: int = Field(
        24 * 3600, description="How long an unfinished upload can be resumed."
    )
    presigned_url_ttl_seconds: int = Field(3600, description="Lifetime of a presigned download URL.")
    upload_part_bytes: int = Field(
        8 * 1024**2, description="S3 multipart part size the API buffers before writing a part (>= 5 MiB)."
    )
    upload_max_chunk_bytes: int = Field(
        4 * 1024**2, description="Largest chunk accepted in one UploadFile message."
    )
    upload_cleanup_interval_seconds: float = Field(
        60.0, description="How often the API aborts expired upload sessions."
    )
    s3_public_endpoint: str | None = Field(
        None,
        description="host:port put in presigned URLs, if clients reach S3 elsewhere than s3_host:s3_port.",
    )
    upload_mmap_threshold_bytes: int = Field(
        8 * 1024**2,
        description="API: allocations this large use mmap and return to the OS when freed (glibc; 0 = glibc default); above the largest chunk, at most the part size.",
    )
    upload_max_streams: int = Field(
        32,
        description="Upload streams one API process receives at once (each buffers up to upload_parts_in_flight + 1 parts); more get RESOURCE_EXHAUSTED.",
    )
    upload_max_streams_per_user: int = Field(
        4,
        description="Upload streams one user may have open at once in one API process; more get RESOURCE_EXHAUSTED with retry-after.",
    )
    upload_max_sessions_per_user: int = Field(
        16,
        description="Unfinished (resumable) upload sessions one user may hold; a new upload_id beyond that gets RESOURCE_EXHAUSTED with retry-after.",
    )
    upload_idle_seconds: float = Field(
        30.0,
        description="An upload stream that sends nothing for this long is closed (ABORTED, its bytes kept for the resume).",
    )
    upload_parts_in_flight: int = Field(
        2,
        description="S3 parts one upload stream writes at once while the next fills (each stream buffers up to this + 1 parts).",
    )
    s3_signed_payload: bool = Field(
        False,
        description="Sign request bodies of 64 KiB and more (SHA-256) over plain http too; off, they go as UNSIGNED-PAYLOAD as over https (S3Proxy then skips a SHA-256 of every uploaded byte).",
    )

    # --- realtime --------------------------------------------------------------
    websocket_port: int = Field(
        8765, description="WebSocket gateway port (ws://host:port/v1/events), served by the API process."
    )
    realtime_queue_size: int = Field(
        1000, description="Events a live client may fall behind before it is disconnected."
    )
    realtime_session_ttl_seconds: int = Field(
        60, description="A Redis session expires this long after its last heartbeat."
    )
    realtime_heartbeat_seconds: float = Field(
        20.0,
        description="How often a connected client's session is refreshed and its token re-checked (a revoked token's streams end within it).",
    )
    realtime_max_streams_per_user: int = Field(
        8,
        description="Live streams (WebSocket and Subscribe together) one user may hold on one API process; more are refused.",
    )
    realtime_max_streams: int = Field(
        10000, description="Live streams one API process holds in total; more are refused."
    )

    # --- TLS -------------------------------------------------------------------
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) of the gRPC API and the WebSocket gateway; with tls_key_file turns TLS on. Required unless dev_mode.",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        None, description="CLI: PEM CA certificate(s) to verify the API with; set, the CLI connects with TLS."
    )

    @property
    def targets_dir(self) -> Path:
        """Where the processes' Prometheus targets are written (metrics_targets_dir, or its default)."""
        return self.metrics_targets_dir or self.stack_dir / "prometheus-targets"

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka's bootstrap address, ``kafka_host:kafka_port``."""
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        """The S3 endpoint, ``s3_host:s3_port`` (no scheme)."""
        return f"{self.s3_host}:{self.s3_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
