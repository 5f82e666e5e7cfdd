// What a call leaves in Durable Object storage, read from the files local workerd keeps: the
// room record and one alarm while the call lasts, the alarm set again only when it must come
// earlier, and nothing at all (no record, no alarm) once the room is empty. The files are read
// with Python's sqlite3 (test/helpers/do-storage.py); without python3 the suite is skipped.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { closed, expectFrame, openPair, ROOT, send, startServer, tempDir } from "./helpers/miniflare.mjs";

// Long enough for the storage reads (a python3 process each) to see the away slot on a busy
// machine.
const GRACE = 4000;
const SWEEP_MS = 5 * 60 * 1000;
const python = spawnSync("python3", ["-c", "import sqlite3"]).status === 0;

/** Each object of the namespace: `{kv, alarm}` (the room record parsed, the alarm in ms). */
function objects(dir) {
  const out = spawnSync("python3", [join(ROOT, "test/helpers/do-storage.py"), join(dir, "duet-Room")], {
    encoding: "utf8",
  });
  assert.equal(out.status, 0, out.stderr);
  return Object.values(JSON.parse(out.stdout)).map(({ kv, alarm }) => ({
    room: kv.room === undefined ? undefined : JSON.parse(kv.room),
    keys: Object.keys(kv),
    alarm,
  }));
}

/** Polls the files until `match` finds the state it waits for (writes land asynchronously). */
async function until(dir, what, match, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const found = match(objects(dir));
    if (found) return found;
    if (Date.now() > end) assert.fail(`storage never showed ${what}: ${JSON.stringify(objects(dir))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a call in storage", { skip: !python && "python3 with sqlite3 is not installed", timeout: 60_000 }, () => {
  const storage = tempDir("duet-storage-");
  let server;

  before(async () => {
    server = await startServer({ vars: { RESUME_GRACE_MS: String(GRACE) }, persistDir: storage.path });
  });
  after(async () => {
    await server?.dispose();
    storage.remove();
  });

  const ofRoom = (room) => (all) => all.find((o) => o.room?.name === room);

  test("one alarm for the call, set again only when it must come earlier; nothing left after", async () => {
    const startedAt = Date.now();
    const { room, a, b } = await openPair(server);
    const both = await until(storage.path, "both slots", (all) => {
      const o = ofRoom(room)(all);
      return o?.room.slots.length === 2 && o;
    });
    // The first join armed the sweep; the second needed it no earlier and left it alone.
    assert.deepStrictEqual(both.keys, ["room"]);
    assert.equal(both.alarm, both.room.alarmAt);
    assert.ok(both.alarm >= startedAt + SWEEP_MS && both.alarm <= Date.now() + SWEEP_MS, `alarm ${both.alarm}`);
    const [first, second] = both.room.slots;
    assert.ok(second.bucket.updatedMs > first.bucket.updatedMs, "the second join came later");
    assert.equal(both.alarm, first.bucket.updatedMs + SWEEP_MS, "the alarm is the first join's sweep");

    // A drop needs the alarm at its resume deadline, earlier than the sweep.
    const droppedAt = Date.now();
    b.ws.terminate();
    await expectFrame(a.ws, { type: "peer-away", room, clientId: b.id });
    const away = await until(storage.path, "the away slot", (all) => {
      const o = ofRoom(room)(all);
      return o?.room.slots.some((s) => s.presence.state === "away") && o;
    });
    const deadline = away.room.slots.find((s) => s.clientId === b.id).presence.deadline;
    assert.ok(deadline >= droppedAt + GRACE, `deadline ${deadline}`);
    assert.equal(away.alarm, deadline);
    assert.equal(away.room.alarmAt, deadline);

    // The grace runs out (the alarm fires) and a leaves: no record, no alarm.
    await expectFrame(a.ws, { type: "peer-left", room, clientId: b.id, reason: "timeout" }, GRACE + 5000);
    send(a.ws, { type: "leave" });
    await closed(a.ws);
    const [gone] = await until(storage.path, "an empty object", (all) => {
      const empty = all.filter((o) => o.keys.length === 0);
      return all.every((o) => o.room?.name !== room) && empty.length > 0 && empty;
    });
    assert.deepStrictEqual(gone, { room: undefined, keys: [], alarm: null });
  });
});
