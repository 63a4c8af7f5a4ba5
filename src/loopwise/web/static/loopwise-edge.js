/*! loopwise-edge.js: decide context-only slots at the edge from Loopwise's edge bundle.
 * An ES module with no dependencies: Cloudflare Workers, Vercel Edge, Deno, Node 18+.
 *
 *   import { loadBundle, decideAtEdge, decide, profileIdFor } from "./loopwise-edge.js";
 *   const bundle = await loadBundle({ host, key });           // GET /v1/edge/bundle (ETag)
 *   const profileId = await profileIdFor(anonymousId);        // the engine's hashing id
 *   const local = decideAtEdge(bundle, context, { profileId, consent }); // no round trip
 *   const all = await decide({ host, key, bundle, context, slots, user, consent });
 *   // decide() also posts local.exposures to /v1/edge/exposures (await all.logged)
 *
 * `context` is the engine's `context.*` namespace: {country, page: {path, url, ...},
 * device: {type}, time: {hour, weekday}, campaign: {...}, traffic_source, locale, ...}.
 * `consent` holds the visitor's explicit choices ({analytics, personalization}); missing ones
 * take the bundle's regional default for context.country. Experiments run only for visitors
 * with both, never for bots, and never in the global holdout, as in the engine.
 * Conditions follow GrowthBook's targeting semantics, as the engine's compiler does; experiment
 * arms use GrowthBook's hashing (FNV-1a 32 over UTF-16 code units), as the engine does.
 */

function path(obj, key) {
  let current = obj;
  for (const part of key.split(".")) {
    if (current === null || typeof current !== "object" || !(part in current)) return undefined;
    current = current[part];
  }
  return current;
}

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const type = typeof value;
  return ["string", "number", "boolean", "object", "undefined"].includes(type) ? type : "unknown";
}

function isOperatorObject(obj) {
  const keys = Object.keys(obj);
  return keys.length > 0 && keys.every((k) => k[0] === "$");
}

function isIn(actual, expected) {
  if (Array.isArray(actual)) return actual.some((a) => expected.includes(a));
  return expected.includes(actual);
}

function elemMatch(actual, expected) {
  if (!Array.isArray(actual)) return false;
  const check = isOperatorObject(expected)
    ? (v) => evalValue(expected, v)
    : (v) => evalCondition(v, expected);
  return actual.some(check);
}

function evalOperator(op, actual, expected) {
  switch (op) {
    case "$eq": return actual === expected;
    case "$ne": return actual !== expected;
    case "$lt": return actual < expected;
    case "$lte": return actual <= expected;
    case "$gt": return actual > expected;
    case "$gte": return actual >= expected;
    case "$exists": return expected ? actual !== null && actual !== undefined
      : actual === null || actual === undefined;
    case "$in": return Array.isArray(expected) && isIn(actual, expected);
    case "$nin": return Array.isArray(expected) && !isIn(actual, expected);
    case "$not": return !evalValue(expected, actual);
    case "$size": return Array.isArray(actual) && evalValue(expected, actual.length);
    case "$elemMatch": return elemMatch(actual, expected);
    case "$all":
      return Array.isArray(actual) && Array.isArray(expected) &&
        expected.every((e) => actual.some((a) => evalValue(e, a)));
    case "$regex":
      try { return new RegExp(expected).test(actual); } catch (e) { return false; }
    case "$regexi":
      try { return new RegExp(expected, "i").test(actual); } catch (e) { return false; }
    case "$type": return typeOf(actual) === expected;
    default: return false;
  }
}

function evalValue(condition, actual) {
  if (typeof condition === "string") return actual + "" === condition;
  if (typeof condition === "number") return actual * 1 === condition;
  if (typeof condition === "boolean") return actual !== null && !!actual === condition;
  if (condition === null) return actual === null;
  if (Array.isArray(condition) || !isOperatorObject(condition)) {
    return JSON.stringify(actual) === JSON.stringify(condition);
  }
  return Object.keys(condition).every((op) => evalOperator(op, actual, condition[op]));
}

/** GrowthBook's evalCondition over `attributes`. */
export function evalCondition(attributes, condition) {
  for (const [key, value] of Object.entries(condition)) {
    if (key === "$or") { if (value.length && !value.some((c) => evalCondition(attributes, c))) return false; }
    else if (key === "$nor") { if (value.some((c) => evalCondition(attributes, c))) return false; }
    else if (key === "$and") { if (!value.every((c) => evalCondition(attributes, c))) return false; }
    else if (key === "$not") { if (evalCondition(attributes, value)) return false; }
    else if (!evalValue(value, path(attributes, key))) return false;
  }
  return true;
}

function active(rule, now) {
  if (rule.active_from && now < new Date(rule.active_from)) return false;
  return !rule.active_to || now < new Date(rule.active_to);
}

// -- GrowthBook's hashing (experiments/assignment.py) -----------------------------------------
function fnv1a32(text) {
  let value = 2166136261;
  for (let i = 0; i < text.length; i++) {
    value ^= text.charCodeAt(i);
    value = Math.imul(value, 16777619) >>> 0;
  }
  return value >>> 0;
}

/** GrowthBook's hash: the user's number in [0, 1), or null for an unknown version. */
export function hash(seed, value, version) {
  if (version === 2) return (fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000;
  if (version === 1) return (fnv1a32(value + seed) % 1000) / 1000;
  return null;
}

function granted(bundle, consent, country, category) {
  if (consent && typeof consent[category] === "boolean") return consent[category];
  const defaults = bundle.consent || { default: {}, countries: {} };
  const code = typeof country === "string" ? country.toUpperCase() : "";
  const entry = defaults.countries[code] || defaults.default;
  return !!entry[category];
}

function running(experiment, now) {
  if (experiment.start && now < new Date(experiment.start)) return false;
  return !experiment.end || now < new Date(experiment.end);
}

/** The arm index the engine would assign, or -1 (not in the experiment: serve the slot as usual). */
function assignArm(experiment, profileId, attributes) {
  const ns = experiment.namespace;
  if (ns) {
    const n = hash("__" + ns[0], profileId, 1);
    if (n === null || n < ns[1] || n >= ns[2]) return -1;
  }
  if (!evalCondition(attributes, experiment.condition)) return -1;
  const n = hash(experiment.seed, profileId, experiment.hash_version);
  if (n === null) return -1;
  return experiment.ranges.findIndex(([start, end]) => start <= n && n < end);
}

/** Decide every slot of the bundle for one request context, locally. */
export function decideAtEdge(bundle, context, { now = new Date(), profileId = null, consent = null } = {}) {
  const segments = bundle.segments
    .filter((s) => evalCondition({ context }, s.condition))
    .map((s) => s.key);
  const attributes = { profile: {}, context, segments };
  const bot = !!(context.device && context.device.type === "bot");
  const eligible = !!profileId && !bot &&
    granted(bundle, consent, context.country, "personalization") &&
    granted(bundle, consent, context.country, "analytics");
  const hold = bundle.holdout;
  const heldOut = eligible && !!hold && hash(hold.seed, profileId, 2) < hold.percent;
  const experiments = eligible && !heldOut ? bundle.experiments || {} : {};
  const slots = {};
  const exposures = [];
  for (const [key, slot] of Object.entries(bundle.slots)) {
    const rule = slot.rules.find((r) => active(r, now) &&
      (!r.segments.length || r.segments.some((s) => segments.includes(s))) &&
      evalCondition(attributes, r.when));
    let id = rule && rule.variant && rule.variant in slot.variants ? rule.variant : slot.default_variant;
    let served = null;
    for (const experiment of experiments[key] || []) {
      if (!running(experiment, now)) continue;
      const index = assignArm(experiment, profileId, attributes);
      if (index < 0) continue;
      const arm = experiment.arms[index];
      id = arm.variant;
      served = { key: experiment.key, arm: arm.key };
      exposures.push({ experiment: experiment.key, arm: arm.key, slot: key });
      break;
    }
    slots[key] = { slot: key, kind: "block", variant: { id, content: slot.variants[id] },
      rule: rule ? rule.id : null, experiment: served };
  }
  return { bundle: bundle.version, segments, slots, exposures, eligible, held_out: heldOut };
}

/** The engine's profile id of a first identifier ("p_" + SHA-256 hex, 24 digits): the id
 * experiments hash, so the edge assigns the arm the engine would. */
export async function profileIdFor(identifier) {
  const data = new TextEncoder().encode(identifier);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return "p_" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 24);
}

/** Store the exposures of edge-decided experiments (and the holdout's): POST /v1/edge/exposures. */
export async function postExposures({ host, key, user, context, consent = null, exposures,
  fetch = globalThis.fetch }) {
  const response = await fetch(`${host.replace(/\/+$/, "")}/v1/edge/exposures`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user, context, consent, exposures }),
  });
  if (!response.ok) throw new Error(`edge exposures: HTTP ${response.status}`);
  return response.json();
}

/** The bundle from the API; pass the previous one to revalidate it (304 keeps it). */
export async function loadBundle({ host, key, previous = null, fetch = globalThis.fetch }) {
  const headers = { Authorization: `Bearer ${key}` };
  if (previous) headers["If-None-Match"] = `"${previous.version}"`;
  const response = await fetch(`${host.replace(/\/+$/, "")}/v1/edge/bundle`, { headers });
  if (response.status === 304 && previous) return previous;
  if (!response.ok) throw new Error(`edge bundle: HTTP ${response.status}`);
  return response.json();
}

/** Edge slots locally, the others (personal) with one /v1/decide call; the exposures of the
 * experiments decided here are posted (`logged`: await it, or hand it to waitUntil). */
export async function decide({ host, key, bundle, context, slots, user, consent = null,
  fetch = globalThis.fetch }) {
  const first = user && (user.anonymous_id || user.user_id);
  const profileId = first ? await profileIdFor(first) : null;
  const local = decideAtEdge(bundle, context, { profileId, consent });
  const remote = slots.filter((s) => !(s in local.slots));
  const out = { edge: local, decision: null, logged: Promise.resolve(null) };
  if (local.exposures.length || (bundle.holdout && local.eligible)) {
    out.logged = postExposures({ host, key, user, context, consent, exposures: local.exposures, fetch })
      .catch((error) => ({ error: String(error) }));
  }
  if (remote.length) {
    const response = await fetch(`${host.replace(/\/+$/, "")}/v1/decide`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ user, context: {}, slots: remote.map((slot) => ({ slot })) }),
    });
    if (response.ok) out.decision = await response.json();
  }
  return out;
}
