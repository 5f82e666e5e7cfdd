// The normative vectors of docs/e2e.md, shared by the Node suite (test/client/e2e.test.mjs,
// which also checks that the document states them) and the WebKitGTK suite.

/** The vector of docs/e2e.md. */
export const VECTOR = {
  secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  room: "e2e-vector",
  sender: "0123456789abcdef0123456789abcdef",
  iv: Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i),
  plaintext: '{"kind":"signal","n":1}',
  keyHex: "e446953ad42f5c906e45f2486fe153ba0069936d920dbf23fa251f1f28f6fb82",
  envelope: '{"e2e":1,"iv":"oKGio6Slpqeoqaqr","ct":"l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}',
};

/** The hello vector of docs/e2e.md ("Key confirmation"), with the secret and room above. */
export const HELLO_VECTOR = {
  receiver: "fedcba9876543210fedcba9876543210",
  iv: Uint8Array.from({ length: 12 }, (_, i) => 0xb0 + i),
  plaintext: '{"to":"fedcba9876543210fedcba9876543210"}',
  aad: "duet-e2e-v1-hello/e2e-vector/0123456789abcdef0123456789abcdef",
  hello: '{"e2e":1,"hello":1,"iv":"sLGys7S1tre4ubq7","ct":"gzw9Haknf-1ihNGtdZFxfhMHv7A41fG4SUutrjoigU1vOm-cw5yGHVU0fAD0e76hGFbe7VxI7-sk"}',
};

const hexFingerprint = (bytes) => bytes.map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":");
export const SAS_VECTOR = {
  a: hexFingerprint(Array.from({ length: 32 }, (_, i) => i)), // 00:01:…:1F
  b: hexFingerprint(Array.from({ length: 32 }, (_, i) => 255 - i)), // FF:FE:…:E0
  code: "024 995",
};
