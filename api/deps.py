"""Everything a servicer needs, built once per API process: settings, Cassandra, Kafka, Redis, tokens."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis

from api.admission import Admission
from api.auth_limits import AuthLimits
from api.db.cassandra import Cassandra
from api.db.client_messages import ClientMessageRepository
from api.db.conversations import ConversationRepository
from api.db.messages import MessageRepository
from api.db.users import UserRepository
from api.files.tables import FileTables
from api.idempotency import SendClaims
from api.pagination import Cursors, cursor_key
from api.passwords import PasswordHasherPool
from api.publisher import Publisher
from api.ratelimit import RateLimiter
from api.tokens import TokenService, resolve_secret
from chat4all.settings import Settings

REDIS_MAX_CONNECTIONS = 64


@dataclass(kw_only=True)
class ApiDeps:
    """Shared clients of one API process. Servicers receive it in their constructor."""

    settings: Settings
    cassandra: Cassandra  # the session every repository below runs on
    users: UserRepository  # the API's Cassandra tables, one repository per family (api/db/)
    conversations: ConversationRepository
    messages: MessageRepository
    publisher: Publisher
    redis: Redis
    tokens: TokenService
    send_limiter: RateLimiter
    send_claims: SendClaims
    admission: Admission
    passwords: PasswordHasherPool  # argon2, on threads of its own
    auth_limits: AuthLimits  # Login/Register per address, failed logins per username
    cursors: Cursors  # signs and checks page tokens
    file_tables: FileTables  # upload_sessions and files (api.files), prepared on first use

    async def close(self) -> None:
        """Close every client (Kafka producer, Cassandra, Redis, the password pool)."""
        await self.publisher.close()
        await self.cassandra.close()
        await self.redis.aclose()
        self.passwords.close()


def build_deps(settings: Settings) -> ApiDeps:
    """Clients for the configured stack; nothing connects yet.

    Cassandra and Kafka connect on first use (and again after an outage), so the API starts while a
    dependency is down. Raises MissingSecret outside dev mode without CHAT4ALL_JWT_SECRET.
    """
    secret = resolve_secret(settings)
    timeout = settings.api_storage_timeout_seconds
    # redis-py's default pool fails a call with MaxConnectionsError once 100 are in use; a burst
    # (e.g. many leases and token checks falling due together under load) must wait for a
    # connection instead, within the call's own timeout.
    pool = BlockingConnectionPool(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=timeout,
    )
    redis = Redis(connection_pool=pool)
    cassandra = Cassandra(settings=settings)
    return ApiDeps(
        settings=settings,
        cassandra=cassandra,
        users=UserRepository(cassandra=cassandra),
        conversations=ConversationRepository(cassandra=cassandra),
        messages=MessageRepository(cassandra=cassandra),
        publisher=Publisher(settings=settings),
        redis=redis,
        tokens=TokenService(
            secret=secret,
            issuer=settings.jwt_issuer,
            ttl_seconds=settings.jwt_ttl_seconds,
            redis=redis,
            cache_seconds=settings.api_token_cache_seconds,
        ),
        send_limiter=RateLimiter(
            redis=redis,
            rate=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
            lease_max=settings.rate_limit_lease_max,
        ),
        send_claims=SendClaims(
            redis=redis, claims=ClientMessageRepository(cassandra=cassandra), settings=settings
        ),
        admission=Admission(settings=settings),
        passwords=PasswordHasherPool(
            threads=settings.password_hash_threads,
            queue=settings.password_hash_queue,
            per_owner=settings.password_hash_per_address,
        ),
        auth_limits=AuthLimits(redis=redis, settings=settings),
        cursors=Cursors(key=cursor_key(settings=settings, jwt_secret=secret)),
        file_tables=FileTables(cassandra=cassandra, timeout=timeout),
    )
