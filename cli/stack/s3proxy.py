"""S3Proxy with its filesystem backend: an S3-compatible server that checks v4 signatures."""

from __future__ import annotations

from chat4all.s3 import s3_client
from cli.stack.process import port_in_use
from cli.stack.server import Server, classpath, java, lib_dir, maven_install


class S3Proxy(Server):
    """S3Proxy, an S3 API on the local filesystem, on ``s3_port``."""

    name = "s3proxy"

    @property
    def port(self) -> int:
        """Its S3 port."""
        return self.settings.s3_port

    def install(self) -> None:
        """Fetch S3Proxy's jars with Maven (skipped when cached)."""
        maven_install(self.settings, "s3proxy")

    def prepare(self) -> None:
        """Write s3proxy.conf (it holds the secret key: mode 0600) under its home."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.render(
            "s3proxy/s3proxy.conf",
            self.home / "conf" / "s3proxy.conf",
            port=self.port,
            access_key=self.settings.s3_access_key,
            secret_key=self.settings.s3_secret_key.get_secret_value(),
            data_dir=self.data_dir,
        )
        (self.home / "conf" / "s3proxy.conf").chmod(0o600)  # it holds the secret key

    def command(self) -> list[str]:
        """The java command line of S3Proxy with its heap and config."""
        heap = self.settings.s3_heap
        return [
            java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-cp",
            classpath(lib_dir(self.settings, "s3proxy")),
            "org.gaul.s3proxy.Main",
            "--properties",
            str(self.home / "conf" / "s3proxy.conf"),
        ]

    def healthy(self) -> bool:
        """True once a signed ListBuckets request answers."""
        if not port_in_use(self.port):
            return False
        try:
            s3_client(self.settings).list_buckets()
            return True
        except Exception:  # not answering signed requests yet
            return False
