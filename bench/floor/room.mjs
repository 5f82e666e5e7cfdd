// The floor: a JavaScript Durable Object that does only what a room of two needs, for
// `make bench-floor` to measure Duet against (bench/BASELINE.md). It speaks enough of
// protocol v1 for duet-bench: the `duet.v1` subprotocol, the welcome (`created`/`joined`),
// `peer-joined`, `ready`, `full` and 4409, the ping auto-response, `peer-left`, and a relay
// that forwards the client's frame as it is. With `durable`, each join puts its slot, the first arms one alarm, and the
// last close deletes everything (deleteAll also drops the alarm since compatibility date
// 2026-02-24); no write is awaited, as the output gate holds every frame until it is durable.
import { DurableObject } from "cloudflare:workers";

const hex = () => crypto.randomUUID().replaceAll("-", "");

/** The 101, naming `duet.v1` when offered: duet-bench (on duet-client) offers it and, like any
 * WebSocket client, refuses a handshake that does not name an offered subprotocol. */
function upgraded(request, client) {
  const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
  const headers = offered.includes("duet.v1") ? { "Sec-WebSocket-Protocol": "duet.v1" } : {};
  return new Response(null, { status: 101, webSocket: client, headers });
}

export function floorRoom(durable) {
  return class Room extends DurableObject {
    constructor(ctx, env) {
      super(ctx, env);
      ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    }

    fetch(request) {
      const room = new URL(request.url).pathname.slice(4);
      const others = this.ctx.getWebSockets();
      const { 0: client, 1: server } = new WebSocketPair();
      if (others.length >= 2) {
        server.accept();
        server.send(JSON.stringify({ type: "full", room, maxPeers: 2 }));
        server.close(4409, "room full");
        return upgraded(request, client);
      }
      const clientId = hex().slice(0, 16);
      this.ctx.acceptWebSocket(server);
      server.serializeAttachment(clientId);
      if (durable) {
        this.ctx.storage.put(`slot:${clientId}`, { clientId, token: hex() + hex() });
        if (others.length === 0) this.ctx.storage.setAlarm(Date.now() + 300_000);
      }
      const peers = others.map((ws) => ws.deserializeAttachment());
      const type = peers.length ? "joined" : "created";
      const welcome = { type, version: 1, room, clientId, resumeToken: hex() + hex(), iceServers: [], maxPeers: 2, maxMessageBytes: 65536, peers };
      server.send(JSON.stringify(peers.length ? { ...welcome, resumed: false } : welcome));
      if (peers.length) {
        others[0].send(JSON.stringify({ type: "peer-joined", room, clientId, resumed: false }));
        const ready = JSON.stringify({ type: "ready", room, initiator: peers[0], peers: [peers[0], clientId] });
        others[0].send(ready);
        server.send(ready);
      }
      return upgraded(request, client);
    }

    webSocketMessage(ws, message) {
      for (const other of this.ctx.getWebSockets()) if (other !== ws) other.send(message);
    }

    webSocketClose(ws, code) {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "");
      const clientId = ws.deserializeAttachment();
      const others = this.ctx.getWebSockets().filter((other) => other !== ws);
      for (const other of others) other.send(JSON.stringify({ type: "peer-left", clientId, reason: "leave" }));
      if (durable && others.length === 0) this.ctx.storage.deleteAll();
    }

    webSocketError(ws) {
      this.webSocketClose(ws, 1006);
    }

    alarm() {}
  };
}

export function floorWorker() {
  return {
    fetch(request, env) {
      const { pathname } = new URL(request.url);
      if (pathname === "/healthz") return Response.json({ status: "ok" });
      const room = /^\/ws\/[A-Za-z0-9_-]{1,64}$/.test(pathname) && pathname.slice(4);
      if (!room || request.headers.get("Upgrade") !== "websocket") return new Response("not found", { status: 404 });
      return env.ROOMS.getByName(room).fetch(request);
    },
  };
}
