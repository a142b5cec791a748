import { seededRandom } from "./helpers/seeded-random.js";
export { seededRandom };
// Shared pieces of the fuzz tests (test/fuzz-*.test.ts): a seeded generator, so a failure is
// replayed with FUZZ_SEED=<seed>, and mutators for bytes and text. FUZZ_ITERATIONS scales every
// fuzz test (short by default for CI; e.g. FUZZ_ITERATIONS=20000 for a long run).
export const fuzzSeed = Number(process.env.FUZZ_SEED ?? 0x5eed) >>> 0;
export const fuzzIterations = (ciDefault: number): number => {
  const n = Number(process.env.FUZZ_ITERATIONS ?? ciDefault);
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), 10_000_000) : ciDefault;
};


export const randInt = (rand: () => number, n: number): number => Math.floor(rand() * n);

export function randomBytes(rand: () => number, max: number): Buffer {
  const b = Buffer.alloc(randInt(rand, max + 1));
  for (let i = 0; i < b.length; i++) b[i] = randInt(rand, 256);
  return b;
}

const interesting = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe];

/** One to four byte-level mutations: flips, interesting bytes, inserts, deletes, duplicated or spliced slices, truncation. */
export function mutateBytes(rand: () => number, input: Uint8Array, donor?: Uint8Array): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + randInt(rand, 4);
  for (let r = 0; r < rounds; r++) {
    const at = randInt(rand, b.length + 1);
    switch (randInt(rand, 7)) {
      case 0:
        if (b.length > 0) b[at % b.length] ^= 1 << randInt(rand, 8);
        break;
      case 1:
        if (b.length > 0) b[at % b.length] = interesting[randInt(rand, interesting.length)]!;
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), randomBytes(rand, 8), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + randInt(rand, 8)))]);
        break;
      case 4: {
        const len = randInt(rand, Math.max(1, b.length - at) + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      case 5:
        if (donor && donor.length > 0) {
          const s = randInt(rand, donor.length);
          b = Buffer.concat([b.subarray(0, at), Buffer.from(donor.subarray(s, s + 1 + randInt(rand, 64))), b.subarray(at)]);
        }
        break;
      default:
        b = b.subarray(0, at);
    }
  }
  return b;
}

const tokens = [
  "", " ", "\t", "\n", "\r\n", "-", "--", "!", "#", ":", "/", ",", "{", "}", "[", "]", '"', "'", "\\", "0", "-1", "65536",
  "4294967296", "99999999999999999999", "0.0.0.0/0", "::/0", "10.0.0.1", "fe80::1%eth0", "256.1.1.1", "1-0", "ACCEPT", "DROP",
  "REJECT", "-j", "-A", "-p", "tcp", "--dport", "null", "true", "NaN", "\u0000", "\u00ff", "é", "💥", "x".repeat(300),
];

/** Line- and token-level mutations for text formats (rule dumps, JSON, error messages). */
export function mutateText(rand: () => number, input: string, donor?: string): string {
  let lines = input.split("\n");
  const rounds = 1 + randInt(rand, 4);
  for (let r = 0; r < rounds; r++) {
    const i = randInt(rand, lines.length);
    switch (randInt(rand, 7)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[randInt(rand, lines.length)] ?? "");
        break;
      case 2: {
        const j = randInt(rand, lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        break;
      }
      case 3: {
        const words = (lines[i] ?? "").split(" ");
        words.splice(randInt(rand, words.length + 1), randInt(rand, 2), tokens[randInt(rand, tokens.length)]!);
        lines[i] = words.join(" ");
        break;
      }
      case 4:
        if (donor) {
          const d = donor.split("\n");
          lines.splice(i, 0, d[randInt(rand, d.length)] ?? "");
        }
        break;
      case 5:
        lines = lines.slice(0, i);
        break;
      default:
        return mutateBytes(rand, Buffer.from(lines.join("\n")), donor ? Buffer.from(donor) : undefined).toString("utf8");
    }
  }
  return lines.join("\n");
}
