"""Server interceptors' plumbing, the one that traces each call, and the one that turns errors into status codes, plus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from api import metrics
from api.errors import ApiError, describe_outage, is_outage
from chat4all import trace_headers, tracing

logger = logging.getLogger(__name__)

# Standard services (health, reflection) are passed through untouched.
PASSTHROUGH_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Called with the call's context, returns the async context manager the handler runs inside.
Guard = Callable[[grpc.aio.ServicerContext], contextlib.AbstractAsyncContextManager]


def wrap_handler(handler: grpc.RpcMethodHandler, *, guard: Guard) -> grpc.RpcMethodHandler:
    """The same handler, its behaviour run inside ``guard(context)``.

    Works for all four call shapes, so a streaming service (FileService.UploadFile) gets the same
    checks as a unary one. Build it once per method (see ``HandlerCache``): it is the same for
    every call.
    """
    ser = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with guard(context):
                return await inner(request, context)

        make = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary
            else grpc.stream_unary_rpc_method_handler
        )
        return make(unary_response, **ser)

    inner = handler.unary_stream or handler.stream_stream

    async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with guard(context):
            if inspect.isasyncgenfunction(inner):
                async for item in inner(request, context):
                    yield item
            else:  # a coroutine that writes with context.write()
                await inner(request, context)

    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return make(stream_response, **ser)


class HandlerCache:
    """Wrapped handlers per method, built on a method's first call.

    An interceptor runs for every call, and wrapping anew each time (closures, handler tuples) was a
    visible share of a SendMessage's CPU.
    """

    def __init__(self, wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]) -> None:
        self._wrap = wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The wrapped ``handler`` of ``method``, built once and again only if the handler changes."""
        hit = self._wrapped.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class _Observed:
    """One call under ObservabilityInterceptor: errors to status codes, then metrics."""

    __slots__ = ("_method", "_context", "_start")

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self._method = method
        self._context = context
        self._start = 0.0

    async def __aenter__(self) -> None:
        self._start = time.perf_counter()
        metrics.IN_PROGRESS.inc()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        context, method = self._context, self._method
        code = grpc.StatusCode.OK
        try:
            if exc is None:
                return False
            if isinstance(exc, grpc.aio.AbortError):  # the servicer called context.abort() itself
                aborted = context.code()
                code = aborted if isinstance(aborted, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
                return False
            if isinstance(exc, asyncio.CancelledError):  # the client went away or its deadline passed
                remaining = context.time_remaining()
                expired = remaining is not None and remaining <= 0
                code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
                return False
            if isinstance(exc, ApiError):
                code = exc.code
                await context.abort(exc.code, exc.message, trailing_metadata=exc.trailers)
            elif is_outage(exc):
                code = grpc.StatusCode.UNAVAILABLE
                logger.warning("%s: dependency unavailable: %s: %s", method, type(exc).__name__, exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, describe_outage(exc))
            elif isinstance(exc, Exception):
                code = grpc.StatusCode.INTERNAL
                logger.error("%s failed", method, exc_info=exc)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
            return False
        finally:
            metrics.IN_PROGRESS.dec()
            metrics.observe(method, code, time.perf_counter() - self._start)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor: turns ApiError and outages into status codes and records metrics."""

    def __init__(self) -> None:
        self._handlers = HandlerCache(
            lambda method, handler: wrap_handler(handler, guard=functools.partial(_Observed, method))
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, wrapped in error mapping and metrics (health and reflection pass as is)."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASSTHROUGH_PREFIXES):
            return handler
        return self._handlers.get(method, handler)


class _Traced:
    """One call under TracingInterceptor: a SERVER span, current while the handler runs."""

    __slots__ = ("_method", "_context", "_span", "_token")

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self._method = method
        self._context = context
        self._span: Any = None
        self._token: Any = None

    async def __aenter__(self) -> None:
        # A caller that traces sends its context as W3C metadata; otherwise the call starts a trace.
        metadata = self._context.invocation_metadata() or ()
        carrier = {k: v for k, v in metadata if k in (trace_headers.TRACEPARENT, trace_headers.TRACESTATE)}
        parent = trace_headers.from_carrier(carrier) if carrier else None
        service, _, name = self._method.lstrip("/").partition("/")
        self._span = tracing.tracer().start_span(
            self._method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        if not self._span.is_recording():
            # Not sampled: the call runs without a current span, so its Cassandra calls,
            # publishes and records make no span and carry no trace context.
            self._span = None
            return
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        span, context = self._span, self._context
        if span is None:
            return False
        otel_context.detach(self._token)
        if exc is None or isinstance(exc, grpc.aio.AbortError):
            code = context.code() if exc is not None else None
            code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
        elif isinstance(exc, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED
        else:
            code = grpc.StatusCode.UNKNOWN
            tracing.fail(span, exc)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
        span.end()
        return False


# The codes that mean the server failed (OpenTelemetry's gRPC conventions); the others are the caller's.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor while tracing is on: a span per call, which the handler's spans and Kafka records continue."""

    def __init__(self) -> None:
        self._handlers = HandlerCache(
            lambda method, handler: wrap_handler(handler, guard=functools.partial(_Traced, method))
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, run inside its span (health and reflection untraced)."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASSTHROUGH_PREFIXES):
            return handler
        return self._handlers.get(method, handler)
