"""A proxy on 127.0.0.1 that answers nothing and records every connection made to it.

scripts/tests/report.sh points Chromium at it (--proxy-server, loopback included), so any request the
page makes (http, https via CONNECT, ws) lands here; the test fails if this log is not empty.

  python3 netguard.py PORTFILE LOGFILE      (writes the chosen port to PORTFILE, runs until killed)
"""
import socket
import sys


def main() -> None:
    port_file, log_file = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(port_file + ".part", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.replace(port_file + ".part", port_file)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(2)
        try:
            first = conn.recv(4096).split(b"\r\n", 1)[0]
        except OSError:
            first = b"(no request line)"
        with open(log_file, "ab") as log:
            log.write(first + b"\n")
        try:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    main()
