"""The operators' own tools against the local stack: Kafka's command-line tools, nodetool and cqlsh."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chat4all.settings import Settings
from cli.stack.exceptions import StackError
from cli.stack.server import CONFIG_DIR, classpath, java, lib_dir, maven_install

# JMX of the local Cassandra listens on loopback only (cli/stack/cassandra.py), so nodetool
# always dials it there, whatever CHAT4ALL_CASSANDRA_HOST says.
JMX_HOST = "127.0.0.1"

# From Cassandra's conf/jvm17-clients.options: the JDK internals nodetool needs on Java 17.
NODETOOL_JVM17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *("--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"),
    *("--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED"),
    *("--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED"),
    *("--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED"),
    *("--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED"),
    *("--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED"),
    *("--add-exports", "java.sql/java.sql=ALL-UNNAMED"),
    *("--add-opens", "java.base/java.lang.module=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED"),
    *("--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED"),
    *("--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED"),
]


@dataclass(frozen=True, kw_only=True)
class JavaTool:
    """One command-line tool: the jars it runs from, its main class and how it finds the local server."""

    name: str
    main_class: str
    artifacts: tuple[str, ...]
    jvm_options: Callable[[Settings], list[str]]
    # Options that name the server; when the operator gives one of them, the default is left out.
    target_flags: frozenset[str]
    target: Callable[[Settings], list[str]]

    def command(self, settings: Settings, args: Sequence[str]) -> list[str]:
        """The java command line that runs this tool with ``args`` against the local stack."""
        given = {arg.split("=", 1)[0] for arg in args}
        target = [] if given & self.target_flags else self.target(settings)
        jars = ":".join(classpath(lib_dir(settings, artifact)) for artifact in self.artifacts)
        return [java(), "-Xmx256m", *self.jvm_options(settings), "-cp", jars, self.main_class, *target, *args]


def _kafka_jvm_options(settings: Settings) -> list[str]:
    return [f"-Dlog4j2.configurationFile={CONFIG_DIR / 'kafka' / 'tools-log4j2.xml'}"]


def _nodetool_jvm_options(settings: Settings) -> list[str]:
    return [
        *NODETOOL_JVM17_OPTIONS,
        f"-Dlogback.configurationFile={CONFIG_DIR / 'cassandra' / 'logback-tools.xml'}",
        "-Djava.net.preferIPv4Stack=true",
    ]


def _kafka_tool(name: str, main_class: str, *, artifacts: tuple[str, ...] = ("kafka-tools",)) -> JavaTool:
    return JavaTool(
        name=name,
        main_class=main_class,
        artifacts=artifacts,
        jvm_options=_kafka_jvm_options,
        target_flags=frozenset({"--bootstrap-server", "--bootstrap-controller"}),
        target=lambda settings: ["--bootstrap-server", settings.kafka_bootstrap],
    )


# Named as Kafka's bin/*.sh scripts are, without the suffix; classes from kafka-tools 4.1.1
# (kafka-configs is still in the broker's jar).
KAFKA_TOOLS = [
    _kafka_tool("kafka-consumer-groups", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"),
    _kafka_tool("kafka-topics", "org.apache.kafka.tools.TopicCommand"),
    _kafka_tool("kafka-get-offsets", "org.apache.kafka.tools.GetOffsetShell"),
    _kafka_tool("kafka-reassign-partitions", "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"),
    _kafka_tool("kafka-leader-election", "org.apache.kafka.tools.LeaderElectionCommand"),
    _kafka_tool("kafka-log-dirs", "org.apache.kafka.tools.LogDirsCommand"),
    _kafka_tool("kafka-metadata-quorum", "org.apache.kafka.tools.MetadataQuorumCommand"),
    _kafka_tool("kafka-transactions", "org.apache.kafka.tools.TransactionsCommand"),
    _kafka_tool("kafka-delete-records", "org.apache.kafka.tools.DeleteRecordsCommand"),
    _kafka_tool("kafka-broker-api-versions", "org.apache.kafka.tools.BrokerApiVersionsCommand"),
    _kafka_tool("kafka-console-consumer", "org.apache.kafka.tools.consumer.ConsoleConsumer"),
    _kafka_tool("kafka-console-producer", "org.apache.kafka.tools.ConsoleProducer"),
    _kafka_tool("kafka-configs", "kafka.admin.ConfigCommand", artifacts=("kafka-tools", "kafka")),
]

NODETOOL = JavaTool(
    name="nodetool",
    main_class="org.apache.cassandra.tools.NodeTool",
    artifacts=("cassandra",),
    jvm_options=_nodetool_jvm_options,
    target_flags=frozenset({"-h", "--host", "-p", "--port"}),
    target=lambda settings: ["-h", JMX_HOST, "-p", str(settings.cassandra_jmx_port)],
)

TOOLS: dict[str, JavaTool] = {tool.name: tool for tool in [*KAFKA_TOOLS, NODETOOL]}


def install(settings: Settings) -> None:
    """Fetch the Kafka tools' jars once (nodetool runs from Cassandra's own jars)."""
    maven_install(settings, "kafka-tools")


def tool_command(settings: Settings, *, name: str, args: Sequence[str]) -> list[str]:
    """The command line of tool ``name`` with ``args``, its jars fetched first if they are missing."""
    tool = TOOLS.get(name)
    if tool is None:
        raise StackError(f"unknown tool {name!r}; known: {', '.join(sorted(TOOLS))}")
    for artifact in tool.artifacts:
        maven_install(settings, artifact)
    return tool.command(settings, args)


def cqlsh_command(settings: Settings, args: Sequence[str]) -> list[str]:
    """The command line of cqlsh on the local Cassandra, in the platform's keyspace.

    cqlsh is the PyPI package, installed beside this Python (or else found on PATH).
    """
    exe = Path(sys.executable).parent / "cqlsh"
    if not exe.exists():
        found = shutil.which("cqlsh")
        if found is None:
            raise StackError("cqlsh is not installed: `make deps` installs it (setup.cfg's dev extra)")
        exe = Path(found)
    return [
        str(exe),
        settings.cassandra_host,
        str(settings.cassandra_port),
        "-k",
        settings.cassandra_keyspace,
        *args,
    ]
