"""Listening addresses shared by the servers: an IPv6 literal in brackets where a port follows
(`[::]:6000`, as gRPC and URLs want it), and an HTTP listening socket that takes IPv6 hosts
(`::` dual-stack where the host allows, so IPv4 and IPv6 clients both reach it)."""

from __future__ import annotations

import ipaddress
import socket


def is_ipv6(host: str) -> bool:
    """Whether `host` is an IPv6 literal (`::`, `::1`, `fd00::5`), not a name or IPv4."""
    try:
        return ipaddress.ip_address(host.strip("[]")).version == 6
    except ValueError:
        return False


def host_port(host: str, port: int) -> str:
    """`host:port`, an IPv6 literal in brackets: `[::]:6000`, `127.0.0.1:6000`."""
    return f"[{host.strip('[]')}]:{port}" if is_ipv6(host) else f"{host}:{port}"


def ipv6_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on the IPv6 literal `host`; IPv4 clients are accepted too
    (IPV6_V6ONLY off) where the kernel allows. OSError when it cannot bind."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        as_servers_bind(sock)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def as_servers_bind(sock: socket.socket) -> None:
    """The options every listening socket here gets before `bind`: SO_REUSEADDR (a port with only
    closing connections is free), and on IPv6 dual-stack where the kernel allows (an IPv6-only
    kernel: IPv6 clients only), as gRPC binds `::`. serve's early port check probes with it too."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6:
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:
            pass
