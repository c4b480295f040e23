"""Errors a handler raises to answer with a gRPC status, and the outages that mean UNAVAILABLE."""

from __future__ import annotations

import asyncio

import grpc
from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat4all import cassandra


class ApiError(Exception):
    """A call's answer as a gRPC status code and a message that says what is wrong."""

    def __init__(
        self, code: grpc.StatusCode, message: str, *, trailers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trailers = trailers


class DependencyUnavailable(Exception):
    """Kafka, Cassandra or Redis did not answer in time; the call gets UNAVAILABLE."""


def invalid(message: str) -> ApiError:
    """An INVALID_ARGUMENT ApiError."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    """A NOT_FOUND ApiError."""
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def denied(message: str) -> ApiError:
    """A PERMISSION_DENIED ApiError."""
    return ApiError(grpc.StatusCode.PERMISSION_DENIED, message)


def unauthenticated(message: str) -> ApiError:
    """An UNAUTHENTICATED ApiError."""
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message)


# Exceptions of the other dependencies that mean one is down or slow, never that the request
# was bad. Cassandra's errors are told apart by chat4all.cassandra.is_outage, the classifier the
# worker's retries use too: an invalid, unauthorized or too-large statement is never an outage
# (a client told UNAVAILABLE would retry forever), so it is INTERNAL.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    DependencyUnavailable,
    KafkaError,
    RedisConnectionError,
    RedisTimeoutError,
    asyncio.TimeoutError,
    ConnectionError,
)


def is_outage(exc: BaseException) -> bool:
    """True if ``exc`` means a dependency is down or slow (the call gets UNAVAILABLE)."""
    return isinstance(exc, OUTAGE_ERRORS) or cassandra.is_outage(exc)


def describe_outage(exc: BaseException) -> str:
    """A short, secret-free description of an outage for the client."""
    if isinstance(exc, DependencyUnavailable):
        return str(exc)
    if isinstance(exc, KafkaError):
        return "Kafka is unavailable; try again"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis is unavailable; try again"
    if isinstance(exc, asyncio.TimeoutError):
        return "a dependency did not answer in time; try again"
    return "Cassandra is unavailable; try again"
