"""The interceptor that checks every request against api.limits before a handler (or any query) runs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from api.errors import invalid
from api.interceptors import HandlerCache
from api.limits import MapRule, Rule, request_rules
from chat4all.settings import Settings

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings, overrides
# (U+202A-U+202E) and isolates (U+2066-U+2069) that make a terminal show text out of order.
_FORBIDDEN_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The same without exceptions: one-line fields take neither newline nor tab.
_FORBIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, kw_only=True)
class _FieldCheck:
    name: str
    rule: Rule | MapRule | None  # None: a message-typed field, checked by ``sub``
    repeated: bool = False
    sub: _MessagePlan | None = None


@dataclass(frozen=True, kw_only=True)
class _MessagePlan:
    full_name: str
    fields: tuple[_FieldCheck, ...]


class Undecodable:
    """What the wrapped deserializer returns for bytes that are not the method's request message."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _compile(
    descriptor: Descriptor, rules: dict[str, dict[str, Rule | MapRule]], plans: dict[str, _MessagePlan]
) -> _MessagePlan:
    """The checks of one message type; RuntimeError if one of its string fields has no rule."""
    if descriptor.full_name in plans:
        return plans[descriptor.full_name]
    declared = rules.get(descriptor.full_name)
    if declared is None:
        raise RuntimeError(f"api.limits declares no rules for request message {descriptor.full_name}")
    checks = []
    for field in descriptor.fields:
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            rule = declared.get(field.name)
            if not isinstance(rule, MapRule):
                raise RuntimeError(
                    f"api.limits: {descriptor.full_name}.{field.name} is a map and needs a MapRule"
                )
            checks.append(_FieldCheck(name=field.name, rule=rule))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if repeated:
                raise RuntimeError(
                    f"api.limits: repeated message field {descriptor.full_name}.{field.name} is not supported"
                )
            checks.append(
                _FieldCheck(name=field.name, rule=None, sub=_compile(field.message_type, rules, plans))
            )
        elif field.type == FieldDescriptor.TYPE_STRING:
            rule = declared.get(field.name)
            if not isinstance(rule, Rule):
                raise RuntimeError(
                    f"api.limits declares no length limit for {descriptor.full_name}.{field.name}"
                )
            if repeated and rule.max_items is None:
                raise RuntimeError(
                    f"api.limits: repeated field {descriptor.full_name}.{field.name} needs max_items"
                )
            checks.append(_FieldCheck(name=field.name, rule=rule, repeated=repeated))
    plans[descriptor.full_name] = plan = _MessagePlan(full_name=descriptor.full_name, fields=tuple(checks))
    return plan


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def checked_text(value: str, rule: Rule, field: str) -> str:
    """``value`` if it passes ``rule`` (with CRLF made LF for "text"); INVALID_ARGUMENT naming ``field`` if not."""
    if rule.chars == "text" and "\r\n" in value:
        value = value.replace("\r\n", "\n")
    if len(value) > rule.max_chars:
        raise invalid(f"{field} is {len(value)} characters; the limit is {rule.max_chars}")
    if rule.chars != "opaque":
        pattern = _FORBIDDEN_IN_TEXT if rule.chars == "text" else _FORBIDDEN_IN_LINE
        bad = pattern.search(value)
        if bad is not None:
            allowed = (
                "newline and tab are the only control characters allowed"
                if rule.chars == "text"
                else ("it must be one line of printable text")
            )
            raise invalid(
                f"{field} contains the control or bidirectional character {_describe(bad.group())}"
                f" at position {bad.start()}; {allowed}"
            )
    return value


def _check_items(count: int, max_items: int, field: str) -> None:
    if count > max_items:
        raise invalid(f"{field} has {count} entries; at most {max_items} are allowed")


def check_message(message: Message, plan: _MessagePlan, prefix: str = "") -> None:
    """Check (and normalise in place) every string field of ``message``; INVALID_ARGUMENT on the first bad one."""
    for check in plan.fields:
        name = prefix + check.name
        if check.sub is not None:
            if message.HasField(check.name):
                check_message(getattr(message, check.name), check.sub, prefix=f"{name}.")
            continue
        rule = check.rule
        value = getattr(message, check.name)
        if isinstance(rule, MapRule):
            _check_items(len(value), rule.max_items, name)
            for key, item in value.items():
                checked_text(key, rule.key, f"{name} key")
                checked_text(item, rule.value, f"{name}[{key[:32]!r}]")
        elif check.repeated:
            assert rule.max_items is not None
            _check_items(len(value), rule.max_items, name)
            for index, item in enumerate(value):
                fixed = checked_text(item, rule, f"{name}[{index}]")
                if fixed is not item:
                    value[index] = fixed
        elif value:
            fixed = checked_text(value, rule, name)
            if fixed is not value:
                setattr(message, check.name, fixed)


class _CheckedStream:
    """A request stream whose messages are checked as the handler reads them.

    A class rather than an async generator: a handler that cancels a pending read (an idle
    timeout) must be able to read again, and a cancelled async generator is finished.
    """

    __slots__ = ("_inner", "_plan")

    def __init__(self, inner: AsyncIterator[Any], plan: _MessagePlan) -> None:
        self._inner = inner
        self._plan = plan

    def __aiter__(self) -> _CheckedStream:
        return self

    async def __anext__(self) -> Any:
        message = await self._inner.__anext__()
        _check(message, self._plan)
        return message


def _check(request: Any, plan: _MessagePlan) -> None:
    if isinstance(request, Undecodable):
        raise invalid(
            f"the request is not a valid {request.type_name} message (bad wire format or invalid UTF-8)"
        )
    if isinstance(request, Message):  # not api.files.handlers.ChunkRequest: a bare chunk, bytes only
        check_message(request, plan)


def _safe_deserializer(
    deserialize: Callable[[bytes], Any] | None, type_name: str
) -> Callable[[bytes], Any] | None:
    """A deserializer that returns Undecodable instead of raising.

    grpc answers INTERNAL for a deserializer that raises, and bytes from outside are never our
    internal error.
    """
    if deserialize is None:
        return None

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, UnicodeDecodeError, ValueError, RuntimeError):
            return Undecodable(type_name)

    return safe


def checked_handler(handler: grpc.RpcMethodHandler, plan: _MessagePlan) -> grpc.RpcMethodHandler:
    """``handler`` with its requests checked against ``plan`` before its behaviour sees them."""
    ser = {
        "request_deserializer": _safe_deserializer(handler.request_deserializer, plan.full_name),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary or handler.unary_stream:
        inner = handler.unary_unary or handler.unary_stream

        if handler.unary_unary:

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                _check(request, plan)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **ser)

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _check(request, plan)
            result = inner(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:  # a coroutine that writes with context.write()
                await result

        return grpc.unary_stream_rpc_method_handler(unary_stream, **ser)

    if handler.stream_unary:
        stream_inner = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await stream_inner(_CheckedStream(requests, plan), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **ser)

    bidi_inner = handler.stream_stream

    async def stream_stream(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        result = bidi_inner(_CheckedStream(requests, plan), context)
        if hasattr(result, "__aiter__"):
            async for item in result:
                yield item
        else:
            await result

    return grpc.stream_stream_rpc_method_handler(stream_stream, **ser)


def method_plans(settings: Settings, services: Iterable[Any]) -> dict[str, _MessagePlan]:
    """Checks per full method name ("/chat4all.v1.X/Y") of the given service descriptors."""
    rules = request_rules(settings)
    plans: dict[str, _MessagePlan] = {}
    out = {}
    for service in services:
        for method in service.methods:
            out[f"/{service.full_name}/{method.name}"] = _compile(method.input_type, rules, plans)
    return out


class InputInterceptor(grpc.aio.ServerInterceptor):
    """Refuses (INVALID_ARGUMENT) a request with a string field over its limit or characters its rule forbids.

    It also normalises CRLF in message content, before the handler runs. Methods of services outside
    ``services`` (health, reflection) pass untouched.
    """

    def __init__(self, *, settings: Settings, services: Iterable[Any]) -> None:
        self._plans = method_plans(settings, services)
        self._handlers = HandlerCache(lambda method, handler: checked_handler(handler, self._plans[method]))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, wrapped in the request checks if it belongs to one of the served services."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method not in self._plans:
            return handler
        return self._handlers.get(method, handler)
