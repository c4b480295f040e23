"""Apache Cassandra 5.0 as its own JVM (CassandraDaemon), one node on loopback."""

from __future__ import annotations

from cli.stack.process import port_in_use
from cli.stack.server import Server, classpath, java, lib_dir, maven_install

# From Cassandra's conf/jvm17-server.options: the JDK internals Cassandra needs on Java 17.
JVM17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports",
    "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports",
    "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports",
    "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports",
    "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports",
    "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports",
    "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports",
    "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports",
    "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens",
    "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens",
    "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens",
    "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.io=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens",
    "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.util=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.nio=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


class Cassandra(Server):
    """Cassandra, one node, on ``cassandra_port``."""

    name = "cassandra"

    @property
    def port(self) -> int:
        """Its CQL port."""
        return self.settings.cassandra_port

    def install(self) -> None:
        """Fetch Cassandra's jars with Maven (skipped when cached)."""
        maven_install(self.settings, "cassandra")

    def prepare(self) -> None:
        """Write cassandra.yaml and logback.xml under its home."""
        self.render(
            "cassandra/cassandra.yaml",
            self.home / "conf" / "cassandra.yaml",
            data_dir=self.data_dir,
            port=self.settings.cassandra_port,
            storage_port=self.settings.cassandra_storage_port,
        )
        self.render("cassandra/logback.xml", self.home / "conf" / "logback.xml")
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        """The java command line of CassandraDaemon, in the foreground, with its heap and directories."""
        lib = lib_dir(self.settings, "cassandra")
        jamm = sorted(lib.glob("jamm-*.jar"))
        heap = self.settings.cassandra_heap
        return [
            java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-Xss512k",
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:+HeapDumpOnOutOfMemoryError",
            f"-XX:HeapDumpPath={self.home}",
            *JVM17_OPTIONS,
            *([f"-javaagent:{jamm[-1]}"] if jamm else []),
            f"-Dcassandra.config=file://{self.home / 'conf' / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dlogback.configurationFile={self.home / 'conf' / 'logback.xml'}",
            f"-Dcassandra.logdir={self.home}",
            f"-Djava.io.tmpdir={self.home / 'tmp'}",  # JNA unpacks its native library here
            "-Dcassandra-foreground=yes",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Djava.net.preferIPv4Stack=true",
            # JMX for nodetool: the "local" port binds the registry and the RMI server to 127.0.0.1
            # only (JMXServerUtils uses the loopback address and sets java.rmi.server.hostname),
            # which is why it may run without authentication on a developer's machine.
            f"-Dcassandra.jmx.local.port={self.settings.cassandra_jmx_port}",
            "-cp",
            classpath(lib),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def healthy(self) -> bool:
        """True once a CQL query on its port answers."""
        if not port_in_use(self.port):
            return False
        from chat4all.cassandra import cluster as make_cluster

        cluster = make_cluster(self.settings, connect_timeout=3)
        try:
            session = cluster.connect()
            session.execute("SELECT release_version FROM system.local", timeout=3)
            return True
        except Exception:  # not answering CQL yet
            return False
        finally:
            cluster.shutdown()
