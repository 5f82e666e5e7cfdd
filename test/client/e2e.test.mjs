// The end-to-end envelope and the key confirmation's hello (public/js/e2e.js) and the safety
// code (public/js/sas.js) in Node, against the normative vectors of docs/e2e.md, checked both
// ways, against an independent implementation with node:crypto (HKDF and AES-256-GCM of
// OpenSSL, not Web Crypto's code path), and with Python's `cryptography` package when installed.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createCipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  deriveKey,
  deriveKeyBytes,
  E2E_FAILURES,
  E2EError,
  envelopeFrameBytes,
  fromBase64Url,
  isEnvelope,
  isHello,
  isSecret,
  newSecret,
  open,
  openHello,
  seal,
  sealHello,
  secretFromFragment,
  toBase64Url,
} from "../../public/js/e2e.js";
import { fingerprintOf, safetyCodeOf } from "../../public/js/sas.js";
import { HELLO_VECTOR, SAS_VECTOR, VECTOR } from "../helpers/e2e-vectors.mjs";

/** Rejects with an E2EError of `reason`. */
async function rejectsWith(promise, reason) {
  await assert.rejects(promise, (error) => error instanceof E2EError && error.reason === reason && error.message === E2E_FAILURES[reason]);
}

describe("the envelope vector", () => {
  test("the secret decodes to bytes 0…31 and the derived key is the vector's", async () => {
    assert.deepEqual(fromBase64Url(VECTOR.secret), Uint8Array.from({ length: 32 }, (_, i) => i));
    assert.equal(Buffer.from(await deriveKeyBytes(VECTOR.secret, VECTOR.room)).toString("hex"), VECTOR.keyHex);
  });

  test("sealing the plaintext with the vector's IV gives the vector's envelope, byte for byte", async () => {
    const key = await deriveKey(VECTOR.secret, VECTOR.room);
    const envelope = await seal(key, VECTOR.room, VECTOR.sender, JSON.parse(VECTOR.plaintext), VECTOR.iv);
    assert.equal(JSON.stringify(envelope), VECTOR.envelope);
  });

  test("opening the vector's envelope gives the plaintext", async () => {
    const key = await deriveKey(VECTOR.secret, VECTOR.room);
    const value = await open(key, VECTOR.room, VECTOR.sender, JSON.parse(VECTOR.envelope));
    assert.equal(JSON.stringify(value), VECTOR.plaintext);
  });

  test("Python's cryptography package agrees (HKDF, AES-GCM, safety code)", async (t) => {
    try {
      execFileSync("python3", ["-c", "import cryptography"], { stdio: "ignore" });
    } catch {
      t.skip("python3 with the cryptography package is not installed");
      return;
    }
    const script = `
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
v = json.load(sys.stdin)
b64d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
b64e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = HKDF(hashes.SHA256(), 32, b"duet-e2e-v1", v["room"].encode()).derive(b64d(v["secret"]))
aad = ("duet-e2e-v1/%s/%s" % (v["room"], v["sender"])).encode()
iv = bytes.fromhex(v["ivHex"])
ct = AESGCM(key).encrypt(iv, v["plaintext"].encode(), aad)
first, second = sorted([v["a"], v["b"]])
n = int.from_bytes(hashlib.sha256(("duet-sas-v1/%s/%s" % (first, second)).encode()).digest()[:4], "big") % 1000000
print(json.dumps({"key": key.hex(), "envelope": json.dumps({"e2e": 1, "iv": b64e(iv), "ct": b64e(ct)}, separators=(",", ":")), "code": "%03d %03d" % (n // 1000, n % 1000)}))
`;
    const input = JSON.stringify({ ...VECTOR, ivHex: Buffer.from(VECTOR.iv).toString("hex"), a: SAS_VECTOR.a, b: SAS_VECTOR.b });
    const python = JSON.parse(execFileSync("python3", ["-c", script], { input, encoding: "utf8" }));
    assert.deepEqual(python, { key: VECTOR.keyHex, envelope: VECTOR.envelope, code: SAS_VECTOR.code });
  });
});

describe("the hello vector (key confirmation)", () => {
  test("sealing the hello with the vector's IV gives the vector's hello, byte for byte", async () => {
    const key = await deriveKey(VECTOR.secret, VECTOR.room);
    const hello = await sealHello(key, VECTOR.room, VECTOR.sender, HELLO_VECTOR.receiver, HELLO_VECTOR.iv);
    assert.equal(JSON.stringify(hello), HELLO_VECTOR.hello);
  });

  test("opening the vector's hello names the receiver", async () => {
    const key = await deriveKey(VECTOR.secret, VECTOR.room);
    assert.equal(await openHello(key, VECTOR.room, VECTOR.sender, JSON.parse(HELLO_VECTOR.hello)), HELLO_VECTOR.receiver);
  });

  test("an independent implementation agrees: node:crypto's HKDF and AES-256-GCM over the documented bytes", () => {
    const key = Buffer.from(hkdfSync("sha256", fromBase64Url(VECTOR.secret), Buffer.from("duet-e2e-v1"), Buffer.from(VECTOR.room), 32));
    assert.equal(key.toString("hex"), VECTOR.keyHex);
    const cipher = createCipheriv("aes-256-gcm", key, HELLO_VECTOR.iv);
    cipher.setAAD(Buffer.from(HELLO_VECTOR.aad));
    const ct = Buffer.concat([cipher.update(Buffer.from(HELLO_VECTOR.plaintext)), cipher.final(), cipher.getAuthTag()]);
    const hello = JSON.stringify({ e2e: 1, hello: 1, iv: Buffer.from(HELLO_VECTOR.iv).toString("base64url"), ct: ct.toString("base64url") });
    assert.equal(hello, HELLO_VECTOR.hello);
  });

  test("Python's cryptography package agrees", (t) => {
    try {
      execFileSync("python3", ["-c", "import cryptography"], { stdio: "ignore" });
    } catch {
      t.skip("python3 with the cryptography package is not installed");
      return;
    }
    const script = `
import base64, json, sys
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
v = json.load(sys.stdin)
b64d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
b64e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = HKDF(hashes.SHA256(), 32, b"duet-e2e-v1", v["room"].encode()).derive(b64d(v["secret"]))
plaintext = json.dumps({"to": v["receiver"]}, separators=(",", ":")).encode()
aad = ("duet-e2e-v1-hello/%s/%s" % (v["room"], v["sender"])).encode()
iv = bytes.fromhex(v["ivHex"])
ct = AESGCM(key).encrypt(iv, plaintext, aad)
print(json.dumps({"e2e": 1, "hello": 1, "iv": b64e(iv), "ct": b64e(ct)}, separators=(",", ":")))
`;
    const input = JSON.stringify({ ...VECTOR, receiver: HELLO_VECTOR.receiver, ivHex: Buffer.from(HELLO_VECTOR.iv).toString("hex") });
    assert.equal(execFileSync("python3", ["-c", script], { input, encoding: "utf8" }).trim(), HELLO_VECTOR.hello);
  });

  test("another key or sender is key-mismatch; a hello never opens as a message, nor a message as a hello", async () => {
    const room = "room-a";
    const [sender, receiver] = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"];
    const key = await deriveKey(newSecret(), room);
    const hello = await sealHello(key, room, sender, receiver);
    assert.deepEqual(Object.keys(hello), ["e2e", "hello", "iv", "ct"]);
    assert.equal(isHello(hello) && isEnvelope(hello), true);
    assert.equal(await openHello(key, room, sender, hello), receiver);
    await rejectsWith(openHello(await deriveKey(newSecret(), room), room, sender, hello), "key-mismatch");
    await rejectsWith(openHello(key, room, receiver, hello), "key-mismatch");
    await rejectsWith(openHello(key, "room-b", sender, hello), "key-mismatch");
    // The same bytes under the other label: a message's additional data is not a hello's.
    const { hello: _, ...asMessage } = hello;
    await rejectsWith(open(key, room, sender, asMessage), "undecryptable");
    const message = await seal(key, room, sender, { to: receiver });
    assert.equal(isHello(message), false);
    await rejectsWith(openHello(key, room, sender, { ...message, hello: 1 }), "key-mismatch");
  });

  test("a malformed hello is named so", async () => {
    const room = "room-a";
    const sender = "aaaaaaaaaaaaaaaa";
    const key = await deriveKey(newSecret(), room);
    const hello = await sealHello(key, room, sender, "bbbbbbbbbbbbbbbb");
    for (const bad of [{ ...hello, hello: 2 }, { ...hello, hello: true }, { ...hello, iv: "AAAA" }, { ...hello, e2e: 2 }, { kind: "hello" }]) {
      await rejectsWith(openHello(key, room, sender, bad), "malformed");
    }
    // Authentic, but not {"to": string}: only a holder of the key could send it.
    const aad = new TextEncoder().encode(`duet-e2e-v1-hello/${room}/${sender}`);
    for (const text of ['{"to":7}', '"bbbbbbbbbbbbbbbb"', "{not json"]) {
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: aad }, key, new TextEncoder().encode(text)));
      await rejectsWith(openHello(key, room, sender, { e2e: 1, hello: 1, iv: "AAAAAAAAAAAAAAAA", ct: toBase64Url(ct) }), "malformed");
    }
  });
});

describe("docs/e2e.md", () => {
  test("states the same vectors as this test", () => {
    const docs = readFileSync(new URL("../../docs/e2e.md", import.meta.url), "utf8");
    for (const value of [VECTOR.secret, VECTOR.room, VECTOR.sender, VECTOR.plaintext, VECTOR.keyHex, VECTOR.envelope, SAS_VECTOR.code, HELLO_VECTOR.receiver, HELLO_VECTOR.plaintext, HELLO_VECTOR.aad, HELLO_VECTOR.hello]) {
      assert.ok(docs.includes(value), `docs/e2e.md lacks ${value}`);
    }
    assert.ok(docs.includes("`duet-e2e-v1/{room}/{sender clientId}`") && docs.includes("`duet-sas-v1/{first}/{second}`"));
    assert.ok(docs.includes("`duet-e2e-v1-hello/{room}/{sender clientId}`") && docs.includes('`{"to":"{receiver clientId}"}`'));
  });
});

describe("round trips and failures", () => {
  const room = "room-a";
  const sender = "aaaaaaaaaaaaaaaa";
  const secret = newSecret();

  test("any JSON value survives a round trip, with a fresh IV each time", async () => {
    const key = await deriveKey(secret, room);
    const values = [{ kind: "signal", description: { type: "offer", sdp: "v=0\r\n…" } }, "ça va ? 👋", 42, null, [1, [2]], true];
    const ivs = new Set();
    for (const value of values) {
      const envelope = await seal(key, room, sender, value);
      assert.deepEqual(Object.keys(envelope), ["e2e", "iv", "ct"]);
      assert.equal(envelope.e2e, 1);
      assert.equal(fromBase64Url(envelope.iv).length, 12);
      assert.equal(fromBase64Url(envelope.ct).length, new TextEncoder().encode(JSON.stringify(value)).length + 16);
      ivs.add(envelope.iv);
      assert.deepEqual(await open(key, room, sender, envelope), value);
    }
    assert.equal(ivs.size, values.length);
  });

  test("another key, an altered IV or ciphertext, another sender or another room do not decrypt", async () => {
    const key = await deriveKey(secret, room);
    const envelope = await seal(key, room, sender, { kind: "signal", n: 1 });
    const flip = (text, at) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    await rejectsWith(open(await deriveKey(newSecret(), room), room, sender, envelope), "undecryptable");
    await rejectsWith(open(await deriveKey(secret, "room-b"), "room-b", sender, envelope), "undecryptable");
    await rejectsWith(open(key, "room-b", sender, envelope), "undecryptable");
    await rejectsWith(open(key, room, "bbbbbbbbbbbbbbbb", envelope), "undecryptable");
    await rejectsWith(open(key, room, sender, { ...envelope, ct: flip(envelope.ct, 3) }), "undecryptable");
    await rejectsWith(open(key, room, sender, { ...envelope, ct: flip(envelope.ct, envelope.ct.length - 2) }), "undecryptable");
    await rejectsWith(open(key, room, sender, { ...envelope, iv: flip(envelope.iv, 0) }), "undecryptable");
  });

  test("plaintext is refused where an envelope is expected, and malformed envelopes are named so", async () => {
    const key = await deriveKey(secret, room);
    const envelope = await seal(key, room, sender, "hi");
    for (const plain of [{ kind: "signal", pc: "x" }, "text", 1, null, [envelope]]) {
      await rejectsWith(open(key, room, sender, plain), "not-encrypted");
    }
    const malformed = [
      { ...envelope, e2e: 2 },
      { ...envelope, e2e: "1" },
      { ...envelope, iv: envelope.iv.slice(1) },
      { ...envelope, iv: `${envelope.iv}AAAA` },
      { ...envelope, iv: envelope.iv.replace(/./, "+") },
      { ...envelope, ct: "AAAA" }, // shorter than the tag
      { ...envelope, ct: `${envelope.ct}=` },
      { ...envelope, ct: 7 },
      { e2e: 1, iv: envelope.iv },
    ];
    for (const bad of malformed) await rejectsWith(open(key, room, sender, bad), "malformed");
    // Authentic bytes that are not JSON (only a holder of the key could send them).
    const raw = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12), additionalData: new TextEncoder().encode(`duet-e2e-v1/${room}/${sender}`) }, key, new TextEncoder().encode("{not json")));
    await rejectsWith(open(key, room, sender, { e2e: 1, iv: "AAAAAAAAAAAAAAAA", ct: toBase64Url(raw) }), "malformed");
  });

  test("what counts as an envelope", () => {
    assert.equal(isEnvelope({ e2e: 1, iv: "", ct: "" }), true);
    assert.equal(isEnvelope({ e2e: null }), true, "any e2e field: never delivered as plaintext");
    for (const plain of [null, "e2e", [{ e2e: 1 }], { kind: "signal" }]) assert.equal(isEnvelope(plain), false);
  });

  test("the frame size is known before encrypting", async () => {
    const key = await deriveKey(secret, room);
    for (const length of [0, 1, 2, 3, 100, 1000, 65_000]) {
      const value = "x".repeat(length);
      const frame = JSON.stringify({ type: "message", data: await seal(key, room, sender, value) });
      assert.equal(envelopeFrameBytes(JSON.stringify(value).length), frame.length, `length ${length}`);
    }
  });
});

describe("cost", () => {
  test("sealing and opening a 4 KB description, per frame", async (t) => {
    const room = "room-cost";
    const key = await deriveKey(newSecret(), room);
    const value = { kind: "signal", pc: "p", to: null, description: { type: "offer", sdp: `v=0\r\n${"a=x:0123456789abcdef\r\n".repeat(180)}` } };
    const rounds = 500;
    const envelopes = [];
    let started = performance.now();
    for (let i = 0; i < rounds; i++) envelopes.push(await seal(key, room, "s", value));
    const sealMs = (performance.now() - started) / rounds;
    started = performance.now();
    for (const envelope of envelopes) await open(key, room, "s", envelope);
    const openMs = (performance.now() - started) / rounds;
    t.diagnostic(`${JSON.stringify(value).length}-byte value: seal ${(sealMs * 1000).toFixed(0)} µs, open ${(openMs * 1000).toFixed(0)} µs per frame (Node ${process.version})`);
    assert.ok(sealMs < 20 && openMs < 20, "well under a frame's network time");
  });
});

describe("base64url", () => {
  test("agrees with Node's Buffer for every length from 0 to 300 bytes, both ways", () => {
    for (let length = 0; length <= 300; length++) {
      const bytes = randomBytes(length);
      const text = bytes.toString("base64url");
      assert.equal(toBase64Url(bytes), text, `encode ${length}`);
      assert.deepEqual(Buffer.from(fromBase64Url(text)), bytes, `decode ${length}`);
    }
    assert.throws(() => fromBase64Url("abc="), TypeError);
    assert.throws(() => fromBase64Url("a"), TypeError);
    assert.throws(() => fromBase64Url("ab+/"), TypeError);
  });
});

describe("link secrets", () => {
  test("a new secret is 43 characters of canonical base64url for 32 random bytes", () => {
    const secrets = new Set(Array.from({ length: 100 }, newSecret));
    assert.equal(secrets.size, 100);
    for (const secret of secrets) {
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(fromBase64Url(secret).length, 32);
      assert.ok(isSecret(secret));
    }
  });

  test("only the canonical spelling of 32 bytes is a secret", async () => {
    assert.ok(isSecret(VECTOR.secret));
    assert.equal(isSecret(`${VECTOR.secret}=`), false);
    assert.equal(isSecret(VECTOR.secret.slice(1)), false);
    assert.equal(isSecret(`${VECTOR.secret.slice(0, 42)}9`), false, "non-zero trailing bits");
    assert.equal(isSecret(`${VECTOR.secret.slice(0, 42)}+`), false);
    assert.equal(isSecret(undefined), false);
    await assert.rejects(deriveKey("short", "room"), TypeError);
  });

  test("the secret comes from the fragment's k", () => {
    assert.equal(secretFromFragment(`#k=${VECTOR.secret}`), VECTOR.secret);
    assert.equal(secretFromFragment(`k=${VECTOR.secret}&x=1`), VECTOR.secret);
    assert.equal(secretFromFragment(""), null);
    assert.equal(secretFromFragment("#"), null);
    assert.equal(secretFromFragment("#x=1"), null);
    assert.equal(secretFromFragment("#k=broken"), "broken", "returned, for the caller to refuse");
  });
});

describe("the safety code", () => {
  test("the vector: 00:01:…:1F and FF:FE:…:E0 give 024 995, in either order", async () => {
    assert.equal(SAS_VECTOR.a.slice(0, 8), "00:01:02");
    assert.equal(SAS_VECTOR.b.slice(-5), "E1:E0");
    assert.equal(await safetyCodeOf(SAS_VECTOR.a, SAS_VECTOR.b), SAS_VECTOR.code);
    assert.equal(await safetyCodeOf(SAS_VECTOR.b, SAS_VECTOR.a), SAS_VECTOR.code);
  });

  test("matches an independent computation with node:crypto, zero-padded", async () => {
    for (const [a, b] of [["AA:BB", "CC:DD"], ["01", "02"], ["ab:cd", "AB:CD"], [SAS_VECTOR.a, SAS_VECTOR.a]]) {
      const [first, second] = [a, b].sort();
      const n = createHash("sha256").update(`duet-sas-v1/${first}/${second}`).digest().readUInt32BE(0) % 1_000_000;
      const digits = String(n).padStart(6, "0");
      assert.equal(await safetyCodeOf(a, b), `${digits.slice(0, 3)} ${digits.slice(3)}`);
    }
  });

  test("only the hex of the first a=fingerprint line counts, as written", () => {
    const sdp = [
      "v=0",
      "o=- 1 2 IN IP4 127.0.0.1",
      "a=group:BUNDLE 0 1",
      "m=audio 9 UDP/TLS/RTP/SAVPF 111",
      `a=fingerprint:sha-256 ${SAS_VECTOR.a}`,
      "a=setup:actpass",
      "m=video 9 UDP/TLS/RTP/SAVPF 96",
      `a=fingerprint:sha-256 ${SAS_VECTOR.b}`,
      "",
    ].join("\r\n");
    assert.equal(fingerprintOf(sdp), SAS_VECTOR.a);
    assert.equal(fingerprintOf("v=0\r\na=fingerprint:sha-1 ab:CD:01\r\n"), "ab:CD:01", "case as written");
    assert.equal(fingerprintOf("v=0\r\nm=audio 9 x 1\r\n"), null);
    assert.equal(fingerprintOf(undefined), null);
  });
});
