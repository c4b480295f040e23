"""Apache Kafka 4.1 in KRaft mode (broker and controller in one JVM)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid

from cli.stack.exceptions import StackError
from cli.stack.server import Server, classpath, java, lib_dir, maven_install


class Kafka(Server):
    """Kafka in KRaft mode, one broker and controller, on ``kafka_port``."""

    name = "kafka"

    @property
    def port(self) -> int:
        """Its broker port."""
        return self.settings.kafka_port

    def install(self) -> None:
        """Fetch Kafka's jars with Maven (skipped when cached)."""
        maven_install(self.settings, "kafka")

    @property
    def _config(self):
        return self.home / "conf" / "server.properties"

    def prepare(self) -> None:
        """Write server.properties and log4j2.xml, and format the KRaft storage on the first run."""
        self.render(
            "kafka/server.properties",
            self._config,
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            data_dir=self.data_dir,
        )
        self.render("kafka/log4j2.xml", self.home / "conf" / "log4j2.xml")
        if (self.data_dir / "meta.properties").exists():
            return
        # KRaft storage is formatted once with a fresh cluster id; later starts reuse it.
        cluster_id = new_cluster_id()
        result = subprocess.run(
            [
                java(),
                "-Xmx256m",
                *self._log_opts(),
                "-cp",
                classpath(lib_dir(self.settings, "kafka")),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self._config),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.home / 'conf' / 'log4j2.xml'}"]

    def command(self) -> list[str]:
        """The java command line of the broker, with its heap and config."""
        heap = self.settings.kafka_heap
        return [
            java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *self._log_opts(),
            "-cp",
            classpath(lib_dir(self.settings, "kafka")),
            "kafka.Kafka",
            str(self._config),
        ]

    def healthy(self) -> bool:
        """True once the cluster can be described."""
        return asyncio.run(_describe_cluster(self.settings.kafka_bootstrap))


def new_cluster_id() -> str:
    """A KRaft cluster id (base64url of a random UUID) that does not start with '-'.

    One id in 64 would, and kafka-storage's argument parser then reads it as an option
    ("argument --cluster-id/-t: expected one argument"); Kafka's own Uuid.randomUuid skips
    those ids for the same reason.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def _describe_cluster(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except Exception:  # any failure to answer means "not healthy yet"
        return False
    finally:
        await admin.close()
