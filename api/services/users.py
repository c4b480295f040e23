"""UserService: GetMe, LinkChannel, UnlinkChannel."""

from __future__ import annotations

import grpc

from api import limits
from api.auth_interceptor import current_user_uuid
from api.deps import ApiDeps
from api.errors import invalid, not_found
from api.registration import ServiceRegistration, full_name
from chat4all.v1 import users_pb2, users_pb2_grpc
from chat4all.wire import Channel

# Channels a user can link an identity on; "native" needs none (it is Chat4All itself).
LINKABLE_CHANNELS = (Channel.WHATSAPP, Channel.INSTAGRAM)
MAX_HANDLE = limits.HANDLE_CHARS


def validate_channel(channel: str) -> str:
    """The channel if a user may link it; INVALID_ARGUMENT otherwise."""
    if channel not in LINKABLE_CHANNELS:
        raise invalid(f"channel must be one of {', '.join(LINKABLE_CHANNELS)}, got {channel[:32]!r}")
    return channel


def validate_handle(channel: str, handle: str) -> str:
    """The handle if it is not blank and at most MAX_HANDLE characters; INVALID_ARGUMENT otherwise."""
    if not handle.strip() or len(handle) > MAX_HANDLE:
        raise invalid(f"handle for {channel} must be 1 to {MAX_HANDLE} characters")
    return handle


def validate_channels(channels: dict[str, str]) -> dict[str, str]:
    """The channel -> handle map, each checked by ``validate_channel`` and ``validate_handle``."""
    return {validate_channel(c): validate_handle(c, h) for c, h in channels.items()}


class UserServicer(users_pb2_grpc.UserServiceServicer):
    """The caller's profile and linked channels."""

    def __init__(self, *, deps: ApiDeps) -> None:
        self._deps = deps

    async def _channels(self, context: grpc.aio.ServicerContext) -> dict[str, str]:
        return await self._deps.users.channels(user_id=current_user_uuid(context), context=context)

    async def GetMe(
        self, request: users_pb2.GetMeRequest, context: grpc.aio.ServicerContext
    ) -> users_pb2.GetMeResponse:
        """GetMe: the caller's id, username and linked channels; NOT_FOUND if the account is gone."""
        user_id = current_user_uuid(context)
        user = await self._deps.users.get(user_id=user_id, context=context)
        if user is None:
            raise not_found(f"user {user_id} not found")
        return users_pb2.GetMeResponse(user_id=str(user_id), username=user.username, channels=user.channels)

    async def LinkChannel(
        self, request: users_pb2.LinkChannelRequest, context: grpc.aio.ServicerContext
    ) -> users_pb2.LinkChannelResponse:
        """LinkChannel: link (or re-link) a channel handle; answers the caller's linked channels."""
        channel = validate_channel(request.channel)
        handle = validate_handle(channel, request.handle)
        await self._deps.users.link_channel(
            user_id=current_user_uuid(context), channel=channel, handle=handle, context=context
        )
        return users_pb2.LinkChannelResponse(channels=await self._channels(context))

    async def UnlinkChannel(
        self, request: users_pb2.UnlinkChannelRequest, context: grpc.aio.ServicerContext
    ) -> users_pb2.UnlinkChannelResponse:
        """UnlinkChannel: unlink a channel; answers the caller's linked channels."""
        channel = validate_channel(request.channel)
        await self._deps.users.unlink_channel(
            user_id=current_user_uuid(context), channel=channel, context=context
        )
        return users_pb2.UnlinkChannelResponse(channels=await self._channels(context))


def registration(deps: ApiDeps) -> ServiceRegistration:
    """UserService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=users_pb2_grpc.add_UserServiceServicer_to_server,
        servicer=UserServicer(deps=deps),
        name=full_name(users_pb2, "UserService"),
    )
