// Node's own test runner: loopwise-edge.js decides the cases the engine decided, identically.
// Run by tests/web/test_edge.py, which writes the cases file and passes its path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decideAtEdge } from "../../src/loopwise/web/static/loopwise-edge.js";

const { bundle, now, cases } = JSON.parse(readFileSync(process.env.LOOPWISE_EDGE_CASES, "utf8"));

test(`${cases.length} random contexts decide as the engine does`, () => {
  const at = new Date(now);
  const started = performance.now();
  let mismatches = 0;
  for (const c of cases) {
    const got = decideAtEdge(bundle, c.context, { now: at });
    for (const [slot, want] of Object.entries(c.slots)) {
      const have = got.slots[slot];
      if (have.variant.id !== want.variant || have.rule !== want.rule) {
        mismatches += 1;
        if (mismatches < 5) console.error(JSON.stringify({ context: c.context, slot, want, have }));
      }
    }
  }
  const perPage = (performance.now() - started) / cases.length;
  console.log(`edge evaluation: ${(perPage * 1000).toFixed(1)} us per page`);
  assert.equal(mismatches, 0);
});
