// Node's own test runner: loopwise-edge.js assigns the experiments of the edge bundle as the
// engine's decide did (variant, rule and arm per slot, and which exposures it would log), for
// the cases tests/web/test_edge.py wrote.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decideAtEdge, profileIdFor } from "../../src/loopwise/web/static/loopwise-edge.js";

const { bundle, now, cases } = JSON.parse(
  readFileSync(process.env.LOOPWISE_EDGE_EXPERIMENT_CASES, "utf8"));

test(`${cases.length} random visitors get the engine's experiment arms`, async () => {
  const at = new Date(now);
  const ids = await Promise.all(cases.map((c) => profileIdFor(c.anonymous_id)));
  let mismatches = 0;
  let served = 0;
  const started = performance.now();
  cases.forEach((c, i) => {
    const got = decideAtEdge(bundle, c.context, { now: at, profileId: ids[i] });
    if (ids[i] !== c.profile_id) mismatches += 1;
    for (const [slot, want] of Object.entries(c.slots)) {
      const have = got.slots[slot];
      const arm = have.experiment ? `${have.experiment.key}:${have.experiment.arm}` : null;
      if (have.variant.id !== want.variant || have.rule !== want.rule || arm !== want.arm) {
        mismatches += 1;
        if (mismatches < 5) console.error(JSON.stringify({ context: c.context, slot, want, have }));
      }
      if (arm) served += 1;
    }
    const logged = got.exposures.map((e) => `${e.experiment}:${e.arm}`).sort();
    if (JSON.stringify(logged) !== JSON.stringify(c.exposures)) {
      mismatches += 1;
      if (mismatches < 5) console.error(JSON.stringify({ want: c.exposures, logged }));
    }
  });
  const perPage = (performance.now() - started) / cases.length;
  console.log(`edge evaluation with experiments: ${(perPage * 1000).toFixed(1)} us per page`);
  console.log(`served arms: ${served}`);
  assert.equal(mismatches, 0);
  assert.ok(served > cases.length / 10);
});
