// @segment/analytics-node with its defaults, only the host set.
// Usage: node segment_node.mjs URL WRITE_KEY USER_ID
import { Analytics } from "@segment/analytics-node";

const [host, writeKey, userId] = process.argv.slice(2);
const analytics = new Analytics({ writeKey, host });
const errors = [];
analytics.on("error", (error) => errors.push(String(error && (error.reason || error))));
analytics.identify({ userId, traits: { plan: "pro" } });
analytics.track({ userId, event: "Signed Up", properties: { plan: "pro" } });
analytics.page({ userId, name: "Pricing", properties: { path: "/pricing" } });
await analytics.closeAndFlush({ timeout: 10000 });
if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
console.log("flushed");
