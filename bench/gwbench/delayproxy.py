"""A TCP proxy that adds a round-trip time: `bench/run --rtt MS`.

The bench's Dovecot is on loopback, where a round trip costs microseconds, so
nothing in the table shows what a client pays per round trip over a real
network. This proxy delivers every chunk it reads one-way = MS / 2
milliseconds later, in both directions, in order, without limiting bandwidth
(what it holds is bandwidth × delay; the kernel's socket buffers and the
writer's drain pace it). The kernel has no netem here (tc: "Specified qdisc
kind is unknown"), hence a process of our own.

Its own cost is measured, not assumed: every byte passes through Python, which
takes CPU from the cores the clients and Dovecot share (bench/PROFILE.md, tenth
pass). Ratios between rows of one --rtt run compare like with like; absolute
times are not comparable with a run without it.

Run as a program (what the bench does, so its CPU is not any row's):
    python3 -m gwbench.delayproxy LISTEN_PORT TARGET_PORT ONE_WAY_MS
It prints "listening" once it accepts connections.
"""

import asyncio
import os
import socket
import subprocess
import sys

CHUNK = 256 * 1024


async def _pump(reader, writer, delay_s):
    """Copy @reader to @writer, each chunk delay_s after it was read; EOF last."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            queue.put_nowait((loop.time() + delay_s, data))
            if not data:
                break
    except (ConnectionError, OSError):
        queue.put_nowait((loop.time(), b""))
    await task


async def _serve(listen_port, target_host, target_port, delay_s, ready):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host,
                                                                         target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, server_writer, delay_s),
                             _pump(server_reader, client_writer, delay_s))
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    ready()
    async with server:
        await server.serve_forever()


class DelayProxy:
    """The proxy as a child process on a free port in front of 127.0.0.1:target_port."""

    def __init__(self, target_port, rtt_ms):
        self.target_port, self.rtt_ms = target_port, rtt_ms
        self.port, self.proc = None, None

    def start(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gwbench.delayproxy", str(self.port), str(self.target_port),
             str(self.rtt_ms / 2.0)], stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if line.strip() != "listening":
            self.stop()
            raise RuntimeError("delay proxy for port %d did not start" % self.target_port)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def describe(self):
        return "%g ms round trip added (one way %g ms) on port %d -> %d" % (
            self.rtt_ms, self.rtt_ms / 2.0, self.port, self.target_port)


def main(argv):
    listen_port, target_port, one_way_ms = int(argv[0]), int(argv[1]), float(argv[2])

    def ready():
        print("listening", flush=True)

    try:
        asyncio.run(_serve(listen_port, "127.0.0.1", target_port, one_way_ms / 1000.0, ready))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
