/*! loopwise-edge.js: decide context-only slots at the edge from Loopwise's edge bundle.
 * An ES module with no dependencies: Cloudflare Workers, Vercel Edge, Deno, Node 18+.
 *
 *   import { loadBundle, decideAtEdge, decide } from "./loopwise-edge.js";
 *   const bundle = await loadBundle({ host, key });           // GET /v1/edge/bundle (ETag)
 *   const local = decideAtEdge(bundle, context);              // no round trip, < 1 ms
 *   const all = await decide({ host, key, bundle, context, slots, user }); // + personal slots
 *
 * `context` is the engine's `context.*` namespace: {country, page: {path, url, ...},
 * device: {type}, time: {hour, weekday}, campaign: {...}, traffic_source, locale, ...}.
 * Conditions follow GrowthBook's targeting semantics, as the engine's compiler does.
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

/** Decide every slot of the bundle for one request context, locally. */
export function decideAtEdge(bundle, context, { now = new Date() } = {}) {
  const segments = bundle.segments
    .filter((s) => evalCondition({ context }, s.condition))
    .map((s) => s.key);
  const attributes = { profile: {}, context, segments };
  const slots = {};
  for (const [key, slot] of Object.entries(bundle.slots)) {
    const rule = slot.rules.find((r) => active(r, now) &&
      (!r.segments.length || r.segments.some((s) => segments.includes(s))) &&
      evalCondition(attributes, r.when));
    const id = rule && rule.variant && rule.variant in slot.variants ? rule.variant : slot.default_variant;
    slots[key] = { slot: key, kind: "block", variant: { id, content: slot.variants[id] },
      rule: rule ? rule.id : null };
  }
  return { bundle: bundle.version, segments, slots };
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

/** Edge slots locally, the others (personal) with one /v1/decide call. */
export async function decide({ host, key, bundle, context, slots, user, fetch = globalThis.fetch }) {
  const local = decideAtEdge(bundle, context);
  const remote = slots.filter((s) => !(s in local.slots));
  const out = { edge: local, decision: null };
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
