"""Redis from Debian's redis-server package, persisting to its data dir."""

from __future__ import annotations

import shutil

import redis

from cli.stack import apt
from cli.stack.server import Server


class Redis(Server):
    """Redis, Debian's redis-server, on ``redis_port``."""

    name = "redis"

    @property
    def port(self) -> int:
        """Its port."""
        return self.settings.redis_port

    def install(self) -> None:
        """Install redis-server with apt-get unless it is on PATH (needs root)."""
        apt.ensure_installed({"redis-server": "redis-server"})

    def prepare(self) -> None:
        """Write redis.conf under its home."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.render(
            "redis/redis.conf", self.home / "conf" / "redis.conf", port=self.port, data_dir=self.data_dir
        )

    def command(self) -> list[str]:
        """The redis-server command line with its config."""
        return [shutil.which("redis-server") or "redis-server", str(self.home / "conf" / "redis.conf")]

    def healthy(self) -> bool:
        """True if Redis answers PING."""
        client = redis.Redis(
            host=self.settings.redis_host, port=self.port, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
