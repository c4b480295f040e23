"""The one table of request input rules: every string field's length limit and character rule, per message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chat4all.settings import Settings

# What a field may contain besides its length limit:
# - "opaque": anything (passwords, page tokens, ids that are parsed later and quoted with repr);
# - "line": text shown to other users on one line (usernames, titles, handles, file names): no
#   C0 or C1 control character at all (newline and tab included), no bidirectional override;
# - "text": message content: CRLF becomes LF, then newline and tab are the only controls allowed
#   and no bidirectional override.
CharRule = Literal["opaque", "line", "text"]

ID_CHARS = 64  # a UUID is 36; uuid.UUID also takes the 45-character urn:uuid: form
PAGE_TOKEN_CHARS = 512  # our signed cursors are under 200
CHANNEL_CHARS = 16  # "whatsapp", "instagram", "native"
MAX_CHANNELS = 8  # more entries than channels exist, for duplicates a client may send
USERNAME_CHARS = 32  # api.services.auth.USERNAME_RE
PASSWORD_CHARS = 256  # api.services.auth.MAX_PASSWORD
HANDLE_CHARS = 128
TITLE_CHARS = 200
MAX_PARTICIPANTS = 500
CLIENT_MESSAGE_ID_CHARS = 128
MAX_MARK_READ = 500  # api.pagination.MAX_PAGE_SIZE: a page of history at once
UPLOAD_ID_CHARS = 128  # api.files.validation.MAX_UPLOAD_ID
FILENAME_CHARS = 255  # api.files.validation.MAX_FILENAME
MIME_TYPE_CHARS = 255  # api.files.validation.MAX_MIME_TYPE
SHA256_CHARS = 64  # lowercase hex


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A string field: at most ``max_chars`` characters, ``chars`` allowed; a repeated one has at most ``max_items``."""

    max_chars: int
    chars: CharRule = "opaque"
    max_items: int | None = None


@dataclass(frozen=True, kw_only=True)
class MapRule:
    """A map<string, string> field: at most ``max_items`` entries, each key and value under its rule."""

    key: Rule
    value: Rule
    max_items: int


def _id(*, max_items: int | None = None) -> Rule:
    return Rule(max_chars=ID_CHARS, max_items=max_items)


def request_rules(settings: Settings) -> dict[str, dict[str, Rule | MapRule]]:
    """Rules per request message (full protobuf name) and field name.

    api.validation refuses to start if a request message of a served chat4all service has a
    string field not listed here, so a new field cannot go without a limit. Message-typed fields
    (FileInfo inside UploadFileRequest) are checked by their own message's entry.
    """
    channel = Rule(max_chars=CHANNEL_CHARS, chars="line")
    handle = Rule(max_chars=HANDLE_CHARS, chars="line")
    username = Rule(max_chars=USERNAME_CHARS, chars="line")
    password = Rule(max_chars=PASSWORD_CHARS)
    page_token = Rule(max_chars=PAGE_TOKEN_CHARS)
    return {
        "chat4all.v1.RegisterRequest": {
            "username": username,
            "password": password,
            "channels": MapRule(key=channel, value=handle, max_items=MAX_CHANNELS),
        },
        "chat4all.v1.LoginRequest": {"username": username, "password": password},
        "chat4all.v1.RevokeTokenRequest": {},
        "chat4all.v1.GetMeRequest": {},
        "chat4all.v1.LinkChannelRequest": {"channel": channel, "handle": handle},
        "chat4all.v1.UnlinkChannelRequest": {"channel": channel},
        "chat4all.v1.CreateConversationRequest": {
            "participant_ids": _id(max_items=MAX_PARTICIPANTS),
            "title": Rule(max_chars=TITLE_CHARS, chars="line"),
        },
        "chat4all.v1.GetConversationRequest": {"conversation_id": _id()},
        "chat4all.v1.ListConversationsRequest": {"page_token": page_token},
        "chat4all.v1.SendMessageRequest": {
            "conversation_id": _id(),
            "content": Rule(max_chars=settings.max_content_chars, chars="text"),
            "client_message_id": Rule(max_chars=CLIENT_MESSAGE_ID_CHARS),
            "file_id": _id(),
            "channels": Rule(max_chars=CHANNEL_CHARS, max_items=MAX_CHANNELS),
        },
        "chat4all.v1.GetMessagesRequest": {"conversation_id": _id(), "page_token": page_token},
        "chat4all.v1.MarkReadRequest": {
            "conversation_id": _id(),
            "message_ids": _id(max_items=MAX_MARK_READ),
        },
        "chat4all.v1.SubscribeRequest": {},
        "chat4all.v1.UploadFileRequest": {},  # info: FileInfo below; chunk: bytes, capped by upload_max_chunk_bytes
        "chat4all.v1.FileInfo": {
            "conversation_id": _id(),
            "filename": Rule(max_chars=FILENAME_CHARS, chars="line"),
            "mime_type": Rule(max_chars=MIME_TYPE_CHARS, chars="line"),
            "sha256": Rule(max_chars=SHA256_CHARS),
            "upload_id": Rule(max_chars=UPLOAD_ID_CHARS, chars="line"),
        },
        "chat4all.v1.GetUploadStatusRequest": {"upload_id": Rule(max_chars=UPLOAD_ID_CHARS)},
        "chat4all.v1.GetDownloadUrlRequest": {"file_id": _id()},
    }
