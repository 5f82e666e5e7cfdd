"""Prints what local workerd keeps for a Durable Object namespace on disk, as JSON.

Usage: do-storage.py NAMESPACE_DIR. One entry per object file: its key-value pairs (values are
V8-serialized strings; the text from the first "{" is returned) and its alarm in ms, or null.
Read-only: the server may be running (the databases are in WAL mode).
"""
import json
import os
import sqlite3
import sys


def rows(path, query):
    uri = "file:" + path + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        try:
            return db.execute(query).fetchall()
        except sqlite3.OperationalError:  # the table does not exist (yet)
            return []


def text(value):
    raw = bytes(value)
    start = raw.find(b"{")
    return raw[start:].decode("latin-1") if start >= 0 else raw.hex()


ns = sys.argv[1]
alarms = {}
metadata = os.path.join(ns, "metadata.sqlite")
if os.path.exists(metadata):
    alarms = {k: v // 1_000_000 for k, v in rows(metadata, "SELECT actor_id, scheduled_time FROM _cf_ALARM")}
objects = {}
for name in sorted(os.listdir(ns)):
    if not name.endswith(".sqlite") or name == "metadata.sqlite":
        continue
    oid = name[: -len(".sqlite")]
    kv = {k: text(v) for k, v in rows(os.path.join(ns, name), "SELECT key, value FROM _cf_KV")}
    objects[oid] = {"kv": kv, "alarm": alarms.get(oid)}
print(json.dumps(objects))
