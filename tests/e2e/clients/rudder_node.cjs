// @rudderstack/rudder-sdk-node with its defaults (gzip on), only the data plane URL set.
// Usage: node rudder_node.cjs URL WRITE_KEY USER_ID
const Analytics = require("@rudderstack/rudder-sdk-node");

const [url, writeKey, userId] = process.argv.slice(2);
const client = new Analytics(writeKey, { dataPlaneUrl: url });
client.identify({ userId, traits: { plan: "pro" } });
client.track({ userId, event: "Signed Up", properties: { plan: "pro" } });
client.page({ userId, name: "Pricing", properties: { path: "/pricing" } });
client.flush().then(() => console.log("flushed"), (error) => {
  console.error(String(error));
  process.exit(1);
});
