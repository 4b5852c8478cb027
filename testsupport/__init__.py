"""Support for tests/, e2e/ and bench/: real processes and servers on loopback, TLS client contexts, settings and
API helpers. Not part of the wheel.

Importable from the repository root: pytest puts the root on sys.path (`pythonpath = ["."]`), and the benchmarks
run as `python -m bench.NAME` from there.

    processes     free_port, wait_until_healthy, BridgeProcess (the real `cookiebridge serve`)
    redis_server  RedisServer, RedisSentinel, cluster_args, find_redis_server, INSTALL_HINT
    servers       ServerThread, https_server (in-process uvicorn servers)
    tls           loopback_client_context, trusting
    settings      make_settings, sqlite_url, A, B, C, NAME, VALUE, SECRET, IDENTITY_KEY
    api           post, issue, token (in-process), call (a process), cookiebridge (the CLI)
    files         read_only
    budgets       the size budgets
"""

from testsupport.processes import BridgeProcess, free_port, wait_until_healthy
from testsupport.redis_server import INSTALL_HINT, RedisSentinel, RedisServer, cluster_args, find_redis_server
from testsupport.servers import ServerThread, https_server
from testsupport.settings import make_settings, sqlite_url
from testsupport.tls import loopback_client_context, trusting

__all__ = [
    "BridgeProcess", "free_port", "wait_until_healthy",
    "INSTALL_HINT", "RedisSentinel", "RedisServer", "cluster_args", "find_redis_server",
    "ServerThread", "https_server",
    "make_settings", "sqlite_url",
    "loopback_client_context", "trusting",
]
