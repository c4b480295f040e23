"""Server interceptors' plumbing, and the outermost one: errors to status codes, plus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from api import metrics
from api.errors import OUTAGE_ERRORS, ApiError, describe_outage

logger = logging.getLogger(__name__)

# Standard services (health, reflection) are passed through untouched.
PASSTHROUGH_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Guard = Callable[[grpc.aio.ServicerContext], contextlib.AbstractAsyncContextManager]


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    *,
    before: Callable[[grpc.aio.ServicerContext], Awaitable[Any]] | None = None,
    after: Callable[[Any], None] | None = None,
    guard: Guard | None = None,
) -> grpc.RpcMethodHandler:
    """The same handler, its behaviour run inside ``guard(context)`` or between ``before`` and ``after``.

    Works for all four call shapes, so a streaming service (FileService.UploadFile) gets the same
    checks as a unary one."""
    if guard is None:

        @contextlib.asynccontextmanager
        async def guard(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
            state = await before(context) if before else None
            try:
                yield
            finally:
                if after:
                    after(state)

    ser = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with guard(context):
                return await inner(request, context)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(unary_response, **ser)

    inner = handler.unary_stream or handler.stream_stream

    async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with guard(context):
            if inspect.isasyncgenfunction(inner):
                async for item in inner(request, context):
                    yield item
            else:  # a coroutine that writes with context.write()
                await inner(request, context)

    make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return make(stream_response, **ser)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor: turns ApiError and outages into status codes and records metrics."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PASSTHROUGH_PREFIXES):
            return handler

        @contextlib.asynccontextmanager
        async def guard(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                yield
            except grpc.aio.AbortError:  # the servicer called context.abort() itself
                aborted = context.code()
                code = aborted if isinstance(aborted, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:  # the client went away or its deadline passed
                remaining = context.time_remaining()
                expired = remaining is not None and remaining <= 0
                code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
                raise
            except ApiError as exc:
                code = exc.code
                await context.abort(exc.code, exc.message, trailing_metadata=exc.trailers)
            except OUTAGE_ERRORS as exc:
                code = grpc.StatusCode.UNAVAILABLE
                logger.warning("%s: dependency unavailable: %s: %s", method, type(exc).__name__, exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, describe_outage(exc))
            except Exception:
                code = grpc.StatusCode.INTERNAL
                logger.exception("%s failed", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
            finally:
                metrics.observe(method, code, time.perf_counter() - start)

        return wrap_handler(handler, guard=guard)
