"""Database servers for the shared SQL suite (test_sql_engines.py): throw-away
MariaDB and PostgreSQL servers on loopback, started by the repository's own
scripts (scripts/mariadb-server, scripts/postgres-server) in a temporary
directory and stopped at the end of the session. Two servers per engine: most
nodes share the first (each node its own database); one node may get the
second so that a test can stop "its" server alone."""
import os
import shutil
import subprocess
import tempfile

from synod_harness import free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = {"mysql": os.path.join(ROOT, "scripts", "mariadb-server"),
           "postgres": os.path.join(ROOT, "scripts", "postgres-server")}


class Server:
    def __init__(self, engine, name):
        self.engine = engine
        self.dir = tempfile.mkdtemp(prefix=f"synod_{engine}_{name}_")
        if engine == "postgres":
            os.chmod(self.dir, 0o755)  # the postgres user must reach it
        self.port = free_port()

    def run(self, *args, timeout=600):
        r = subprocess.run([SCRIPTS[self.engine], *args], capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, f"{self.engine} server {args}: {r.stdout}\n{r.stderr}"

    def start(self):
        self.run("start", self.dir, str(self.port))

    def stop(self):
        self.run("stop", self.dir)

    def remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def options(self, database):
        """The node's --backend-option flags for a database of this server."""
        user = "root" if self.engine == "mysql" else "postgres"
        return [f"--backend-option={self.engine}.{k}={v}" for k, v in
                (("host", "127.0.0.1"), ("port", self.port), ("user", user),
                 ("database", database))]


class Servers:
    """Lazily started servers, two per engine, for the whole session."""

    def __init__(self):
        self.started = {}

    def get(self, engine, which=0):
        key = (engine, which)
        if key not in self.started:
            s = Server(engine, f"s{which}")
            s.start()
            self.started[key] = s
        return self.started[key]

    def close(self):
        for s in self.started.values():
            s.remove()
