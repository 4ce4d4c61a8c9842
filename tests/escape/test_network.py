"""Network escapes: seccomp denies socket() and friends (Landlock alone misses Unix sockets,
UDP, vsock, netlink, packet); Landlock also denies TCP bind/connect."""


def test_blocks_tcp_connect_to_loopback(sb):
    body = "import socket; socket.create_connection(('127.0.0.1', 22), timeout=1)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_tcp_listen(sb):
    body = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_udp_loopback(sb):
    body = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_ipv6_socket(sb):
    assert sb.attempt("import socket; socket.socket(socket.AF_INET6)") == "DENIED PermissionError EPERM"


def test_blocks_netlink_socket(sb):
    body = "import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_packet_socket(sb):
    body = "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_vsock_to_the_vm_host(sb):
    body = "import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).connect((2, 1024))"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_abstract_unix_socket(sb):
    body = "import socket; socket.socket(socket.AF_UNIX).connect('\\0ptcd-escape')"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_connecting_to_the_daemons_own_socket(sb):
    body = "import socket; socket.socket(socket.AF_UNIX).connect(SOCK)"
    assert sb.attempt(body, inputs={"SOCK": str(sb.daemon.socket)}) == "DENIED PermissionError EPERM"


def test_blocks_datagram_socketpair(sb):
    body = "import socket; socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_seqpacket_socketpair(sb):
    body = "import socket; socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_raw_socket_syscall_through_ctypes(sb):
    assert sb.attempt("raw_syscall(41, 2, 1, 0)") == "DENIED PermissionError EPERM"  # socket(AF_INET, STREAM)


def test_blocks_connect_on_the_control_socket(sb):
    body = "import os, socket; socket.socket(fileno=os.dup(3)).connect('\\0x')"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_dns_resolution(sb):
    assert sb.attempt("import socket; socket.getaddrinfo('example.com', 443)") == "DENIED gaierror -"
