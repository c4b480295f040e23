"""The API's input rules: a rule for every string field of every request, the content limit from the setting, text, line and opaque fields."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

import chat4all.v1
from api.errors import ApiError
from api.limits import Rule, request_rules
from api.validation import checked_text, method_plans
from chat4all.settings import Settings

HOSTILE = [
    "\x1b[2J",
    "\x07",
    "\x00",
    "a\rb",
    "\x7f",
    "\x9b31m",
    "\u202eevil",
    "\u2066x\u2069",
    "\x0b",
    "\x1f",
]


def all_services() -> list:
    services = []
    for info in pkgutil.iter_modules(chat4all.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"chat4all.v1.{info.name}")
            services += list(module.DESCRIPTOR.services_by_name.values())
    return services


def test_every_string_field_of_every_request_has_a_rule() -> None:
    services = all_services()
    assert {s.name for s in services} >= {
        "AuthService",
        "UserService",
        "ConversationService",
        "MessageService",
        "FileService",
        "EventService",
    }
    plans = method_plans(Settings(), services)  # raises if one string field has no rule
    assert len(plans) == sum(len(s.methods) for s in services)
    rules = request_rules(Settings())
    seen = set()

    def walk(descriptor) -> None:
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
                walk(field.message_type)
            elif field.type == FieldDescriptor.TYPE_STRING or field.type == FieldDescriptor.TYPE_MESSAGE:
                assert field.name in rules[descriptor.full_name], f"{descriptor.full_name}.{field.name}"
                seen.add(f"{descriptor.full_name}.{field.name}")

    for service in services:
        for method in service.methods:
            walk(method.input_type)
    assert "chat4all.v1.FileInfo.upload_id" in seen and "chat4all.v1.LoginRequest.username" in seen


def test_the_content_limit_is_the_setting() -> None:
    rule = request_rules(Settings(max_content_chars=10))["chat4all.v1.SendMessageRequest"]["content"]
    assert rule.max_chars == 10
    checked_text("x" * 10, rule, "content")
    with pytest.raises(ApiError, match="content is 11 characters; the limit is 10"):
        checked_text("x" * 11, rule, "content")


def test_text_normalises_crlf_and_allows_newline_and_tab_only() -> None:
    text = Rule(max_chars=100, chars="text")
    assert checked_text("a\r\nb\r\n", text, "content") == "a\nb\n"
    assert checked_text("col\tcol\nline 2 — ünïcode 🙂", text, "content") == "col\tcol\nline 2 — ünïcode 🙂"
    for bad in HOSTILE:
        with pytest.raises(ApiError) as exc:
            checked_text(f"hi {bad}", text, "content")
        assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "content contains the control or bidirectional character U+" in exc.value.message


def test_line_fields_take_no_control_at_all() -> None:
    line = Rule(max_chars=100, chars="line")
    assert checked_text("Team “Ω” 🙂", line, "title") == "Team “Ω” 🙂"
    for bad in [*HOSTILE, "two\nlines", "tab\there", "crlf\r\n"]:
        with pytest.raises(ApiError, match="title contains"):
            checked_text(bad, line, "title")


def test_opaque_fields_only_have_a_length() -> None:
    opaque = Rule(max_chars=8)
    assert checked_text("\x00\x1b\r\n", opaque, "password") == "\x00\x1b\r\n"
    with pytest.raises(ApiError, match="password is 9 characters; the limit is 8"):
        checked_text("x" * 9, opaque, "password")
