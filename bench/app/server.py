"""The benchmark app: a stdlib server that reports how long its own start took."""
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


def boot_ms():
    """Milliseconds from this process's start to now, from the kernel's clocks."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return (uptime - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = HTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler)
    print(f"booted in {boot_ms():.0f} ms", flush=True)
    server.serve_forever()
