#!/usr/bin/python3
"""The seed's training hub on the seed's own stack: the peer `make bench`
measures beside Kairoscope's hub (package benchmarks/hubload).

FastAPI + uvicorn serve the seed's /ws protocol (training-websocket-schema.md):
a client connects to ws://HOST:PORT/ws, may send "ping" (nothing is
answered) and receives every training message as one JSON text frame. The
broadcast is FastAPI's documented ConnectionManager: one `await
send_text` per client, in turn, for each message.

What it broadcasts: a real training run, the same for every path of the
benchmark. On each train command the peer starts the feed it was given
(`hubload feed`: a Kairoscope worker process training the request, without
prediction_delta, which the seed's stack never sends), reads its stdout one
line (one enveloped message) at a time and broadcasts each line as it is,
before reading the next. The feed stamps when it handed each line to the
pipe, so a message waiting there while an earlier broadcast runs counts in
its latency. The seed's stack trained with PyTorch inside the server
process; here training runs in its own process, so it never holds the
peer's interpreter lock: the comparison is of the broadcast, not of
PyTorch's training loop.

The driver speaks to it as to `hubload server` (benchmarks/hubload
protocol.go), in JSON lines: first {"addr": "127.0.0.1:PORT", "stack": ...}
on stdout, then one reply per command read on stdin (mem, wait_clients,
train, publishes) until EOF, when it stops. Memory is VmRSS only
(heap_bytes -1).

Run with Debian's /usr/bin/python3 (python3-fastapi, python3-uvicorn; the
WebSocket implementation is uvicorn's "auto": websockets when installed,
else wsproto):
  /usr/bin/python3 fastapi_hub.py --feed '["hubload", "feed", "-worker", "kairoscope", "-reports", "DIR"]' --dir DIR
"""

import argparse
import asyncio
import gc
import json
import os
import socket
import sys
import threading

import fastapi
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

# How long wait_clients waits, as hubload's server does.
WAIT_S = 300


class ConnectionManager:
    """FastAPI's broadcast example (docs: Advanced, WebSockets)."""

    def __init__(self):
        self.active_connections = []

    async def connect(self, websocket):
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket):
        if websocket in self.active_connections:
            self.active_connections.remove(websocket)

    async def broadcast(self, message):
        for connection in list(self.active_connections):
            try:
                await connection.send_text(message)
            except Exception:  # a client that left: the next receive ends it
                self.disconnect(connection)


app = FastAPI()
manager = ConnectionManager()


@app.websocket("/ws")
async def training_ws(websocket: WebSocket):
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()  # the seed's clients send "ping"
    except (WebSocketDisconnect, KeyError, RuntimeError):
        pass
    finally:
        manager.disconnect(websocket)


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Peer:
    def __init__(self, feed, folder):
        self.feed = feed
        self.dir = folder
        self.runs = {}  # run_id -> {"at": [...], "types": [...]}
        self.count = 0

    async def handle(self, cmd):
        c = cmd.get("cmd")
        if c == "mem":
            gc.collect()
            return {"mem": {"heap_bytes": -1, "stack_bytes": 0, "rss_bytes": rss_bytes(), "goroutines": 0}}
        if c == "wait_clients":
            want = cmd.get("clients", 0)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT_S
            while len(manager.active_connections) != want:
                if loop.time() > deadline:
                    return {"error": f"waited {WAIT_S} s for {want} clients", "clients": len(manager.active_connections)}
                await asyncio.sleep(0.005)
            return {"clients": want}
        if c == "train":
            return await self.train(cmd.get("request") or {})
        if c == "publishes":
            pub = self.runs.get(cmd.get("run_id"))
            if pub is None:
                return {"error": f"no run {cmd.get('run_id')!r}"}
            return {"published": pub}
        return {"error": f"unknown command {c!r}"}

    async def train(self, request):
        self.count += 1
        published = os.path.join(self.dir, f"feed-{self.count}.json")
        argv = self.feed + ["-request", json.dumps(request), "-published", published]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, limit=1 << 24)
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            await manager.broadcast(line.decode().rstrip("\n"))
        rc = await proc.wait()
        try:
            with open(published) as f:
                res = json.load(f)
        except OSError as e:
            return {"error": f"the feed exited {rc} and wrote no result: {e}"}
        self.runs[res["run"]["run_id"]] = res["published"]
        if rc != 0 or res.get("error"):
            return {"error": res.get("error") or f"the feed exited {rc}", "run": res["run"]}
        return {"run": res["run"]}


def control(loop, server, peer):
    """Answers the driver's commands from stdin, one at a time, on the loop."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            reply = asyncio.run_coroutine_threadsafe(peer.handle(cmd), loop).result()
        except Exception as e:  # the driver reports it
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    server.should_exit = True
    server.force_exit = True


async def main(args):
    peer = Peer(json.loads(args.feed), args.dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="auto", backlog=4096)
    config.load()
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            return
        await asyncio.sleep(0.01)
    ws_impl = config.ws_protocol_class.__module__.rsplit(".", 1)[-1]
    stack = f"FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__} ({ws_impl}), Python {sys.version.split()[0]}"
    host, port = sock.getsockname()[:2]
    sys.stdout.write(json.dumps({"addr": f"{host}:{port}", "stack": stack}) + "\n")
    sys.stdout.flush()
    threading.Thread(target=control, args=(asyncio.get_running_loop(), server, peer), daemon=True).start()
    await serving


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feed", required=True, help="the feed command, a JSON array (hubload feed -worker ... -reports ...)")
    p.add_argument("--dir", required=True, help="folder for the feed's result files")
    asyncio.run(main(p.parse_args()))
