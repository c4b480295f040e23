"""Authentication: the interceptor that checks `authorization: Bearer <jwt>` on the calls that need it.

`current_user_id(context)` gives servicers the caller.
"""

from __future__ import annotations

import contextvars
import functools
import uuid
from collections.abc import Awaitable, Callable

import grpc

from api.deadline import budget
from api.errors import ApiError, unauthenticated
from api.interceptors import HandlerCache, wrap_handler
from api.tokens import Claims, TokenService

# Methods that need no token: account creation, login, health checks and reflection.
PUBLIC_METHODS = frozenset({"/chat4all.v1.AuthService/Register", "/chat4all.v1.AuthService/Login"})
PUBLIC_SERVICE_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_claims: contextvars.ContextVar[Claims | None] = contextvars.ContextVar("chat4all_api_claims", default=None)


def current_claims(context: grpc.aio.ServicerContext | None = None) -> Claims:
    """The verified token of the call being handled (set by AuthInterceptor)."""
    claims = _claims.get()
    if claims is None:
        # Only reachable from a public method or outside a call: a programming error, not the client's.
        raise ApiError(grpc.StatusCode.INTERNAL, "no authenticated user for this call")
    return claims


def current_user_id(context: grpc.aio.ServicerContext | None = None) -> str:
    """The authenticated caller's user id (a UUID string)."""
    return current_claims(context).user_id


def current_user_uuid(context: grpc.aio.ServicerContext | None = None) -> uuid.UUID:
    """The caller's user id as a UUID (see ``current_user_id``)."""
    return uuid.UUID(current_user_id(context))


def bearer_token(metadata: tuple | None) -> str:
    """The token of an `authorization: Bearer <jwt>` header; UNAUTHENTICATED if absent or malformed."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthenticated("authorization metadata must be 'Bearer <token>'")
            return token.strip()
    raise unauthenticated("missing access token: send metadata 'authorization: Bearer <token>' (see Login)")


class _Authenticated:
    """One call under AuthInterceptor: the caller's verified claims, set for the handler."""

    __slots__ = ("_tokens", "_timeout", "_context", "_reset")

    def __init__(self, tokens: TokenService, timeout: float, context: grpc.aio.ServicerContext) -> None:
        self._tokens = tokens
        self._timeout = timeout
        self._context = context
        self._reset: contextvars.Token | None = None

    async def __aenter__(self) -> None:
        token = bearer_token(self._context.invocation_metadata())
        claims = await self._tokens.verify(token, timeout=budget(self._context, self._timeout))
        self._reset = _claims.set(claims)

    async def __aexit__(self, *exc_info: object) -> bool:
        if self._reset is not None:
            _claims.reset(self._reset)
        return False


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without a valid, unrevoked token (UNAUTHENTICATED) before the servicer runs."""

    def __init__(self, *, tokens: TokenService, timeout: float) -> None:
        guard = functools.partial(_Authenticated, tokens, timeout)
        self._handlers = HandlerCache(lambda method, handler: wrap_handler(handler, guard=guard))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, wrapped in the token check unless the method is public."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method in PUBLIC_METHODS or method.startswith(PUBLIC_SERVICE_PREFIXES):
            return handler
        return self._handlers.get(method, handler)
