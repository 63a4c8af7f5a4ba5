/*! loopwise.js: send page views, events and decision feedback to Loopwise. No dependencies.
 *
 *   loopwise.init({writeKey: "lw_write_...", host: "https://loopwise.example.com"});
 *   loopwise.page();
 *   loopwise.track("Product Viewed", {product_id: "run-001"});
 *   loopwise.identify("user-42", {email: "ada@example.com"});
 *   loopwise.decisionShown(decisionId, "hero");
 *   loopwise.decisionClicked(decisionId, "recommended", "run-001");
 *   loopwise.why(decisionId).then(function (answer) { ... });  // "Why am I seeing this?"
 *
 * A <details data-lw-why="DECISION_ID" data-lw-slot="SLOT"> element is filled from
 * `${host}/v1/decisions/{id}/why` (write key) the first time it is opened.
 *
 * Calls are queued and sent in batches to `${host}/v1/batch` (Segment's batch format, with the
 * public write key in the body so no auth header is needed). On pagehide the queue goes out with
 * navigator.sendBeacon so the last events of a page are not lost.
 */
(function (window) {
  "use strict";

  var VERSION = "0.1.0";
  var ANON_KEY = "lw_aid";
  var USER_KEY = "lw_uid";
  var MAX_BATCH = 50; // messages per request (well under the server's byte limits)
  var MAX_QUEUE = 500; // drop the oldest beyond this while offline
  var FLUSH_MS = 1000;

  var config = { writeKey: null, host: "" };
  var queue = [];
  var timer = null;
  var retryMs = FLUSH_MS;
  var memory = {}; // used when localStorage is unavailable (private mode, sandboxed iframes)

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
      hex.slice(20)].join("-");
  }

  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }

  function save(key, value) {
    memory[key] = value;
    try { window.localStorage.setItem(key, value); } catch (e) { /* memory only */ }
  }

  function anonymousId() {
    var id = load(ANON_KEY);
    if (!id) { id = uuid(); save(ANON_KEY, id); }
    return id;
  }

  function pageInfo() {
    var loc = window.location;
    return {
      url: loc.href,
      path: loc.pathname,
      referrer: document.referrer,
      title: document.title,
      search: loc.search
    };
  }

  function context() {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = undefined; }
    return {
      page: pageInfo(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
      timezone: zone,
      library: { name: "loopwise.js", version: VERSION }
    };
  }

  function enqueue(type, fields) {
    var message = Object.assign({
      type: type,
      messageId: uuid(),
      timestamp: new Date().toISOString(),
      anonymousId: anonymousId(),
      context: context()
    }, fields);
    var userId = load(USER_KEY);
    if (userId && !message.userId) message.userId = userId;
    queue.push(message);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    if (queue.length >= MAX_BATCH) flush();
    else schedule(FLUSH_MS);
  }

  function schedule(ms) {
    if (timer === null) timer = setTimeout(function () { timer = null; flush(); }, ms);
  }

  function body(batch) {
    return JSON.stringify({ writeKey: config.writeKey, sentAt: new Date().toISOString(),
      batch: batch });
  }

  function requeue(batch) {
    queue = batch.concat(queue).slice(-MAX_QUEUE);
    retryMs = Math.min(retryMs * 2, 60000); // back off while the server is away
    schedule(retryMs);
  }

  function flush(unloading) {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (!config.writeKey) return; // wait for init()
    var url = config.host.replace(/\/+$/, "") + "/v1/batch";
    while (queue.length) {
      var batch = queue.splice(0, MAX_BATCH);
      var payload = body(batch);
      if (unloading && navigator.sendBeacon) {
        var sent = false;
        try {
          sent = navigator.sendBeacon(url, new Blob([payload], { type: "application/json" }));
        } catch (e) { sent = false; }
        if (sent) continue;
      }
      post(url, payload, batch);
    }
  }

  function post(url, payload, batch) {
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: payload,
      keepalive: payload.length < 60000, // browsers cap keepalive bodies at 64 KB
      credentials: "omit"
    }).then(function (response) {
      // Retry only what may succeed later; a 4xx means the batch itself is bad.
      if (response.status >= 500 || response.status === 429) requeue(batch);
      else retryMs = FLUSH_MS;
    }, function () { requeue(batch); });
  }

  var loopwise = {
    VERSION: VERSION,

    init: function (options) {
      options = options || {};
      config.writeKey = options.writeKey || null;
      config.host = options.host || "";
      if (options.anonymousId) {
        // The page knows the visitor (e.g. a server cookie): calls queued before init follow.
        var previous = load(ANON_KEY), next = String(options.anonymousId);
        save(ANON_KEY, next);
        queue.forEach(function (m) { if (m.anonymousId === previous) m.anonymousId = next; });
      }
      if (queue.length) schedule(0);
      return loopwise;
    },

    anonymousId: anonymousId,

    page: function (props) {
      var properties = Object.assign(pageInfo(), props || {});
      enqueue("page", { name: properties.name || document.title, properties: properties });
    },

    track: function (event, props) {
      enqueue("track", { event: String(event), properties: props || {} });
    },

    identify: function (userId, traits) {
      if (userId) save(USER_KEY, String(userId));
      enqueue("identify", { userId: userId ? String(userId) : undefined, traits: traits || {} });
    },

    decisionShown: function (decisionId, slot, itemId) {
      loopwise.track("Content Viewed",
        { decision_id: decisionId, slot: slot, item_id: itemId == null ? null : itemId });
    },

    decisionClicked: function (decisionId, slot, itemId) {
      loopwise.track("Content Clicked",
        { decision_id: decisionId, slot: slot, item_id: itemId == null ? null : itemId });
    },

    why: function (decisionId) {
      // The plain-language explanation of a decision; the write key may read it.
      var url = config.host.replace(/\/+$/, "") + "/v1/decisions/" +
        encodeURIComponent(decisionId) + "/why";
      return fetch(url, {
        headers: { Authorization: "Basic " + window.btoa((config.writeKey || "") + ":") },
        credentials: "omit"
      }).then(function (response) {
        if (!response.ok) throw new Error("why: HTTP " + response.status);
        return response.json();
      });
    },

    flush: function () { flush(false); },

    reset: function () {
      try {
        window.localStorage.removeItem(USER_KEY);
        window.localStorage.removeItem(ANON_KEY);
      } catch (e) { /* nothing stored */ }
      memory = {};
    }
  };

  function fillWhy(details) {
    var slot = details.getAttribute("data-lw-slot");
    loopwise.why(details.getAttribute("data-lw-why")).then(function (answer) {
      var found = (answer.slots || []).filter(function (s) { return s.slot === slot; })[0];
      if (!found) return;
      var list = document.createElement("ul");
      [found.summary].concat(found.reasons).forEach(function (text, i) {
        if (i > 0 && text === found.summary) return;
        var item = document.createElement("li");
        item.textContent = text; // text only: never parsed as HTML
        list.appendChild(item);
      });
      var old = details.querySelector("ul");
      if (old) details.replaceChild(list, old); else details.appendChild(list);
    }, function () { /* keep the explanation rendered with the page */ });
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details || !details.open || !details.getAttribute) return;
    if (!details.getAttribute("data-lw-why") || details.getAttribute("data-lw-why-loaded")) return;
    details.setAttribute("data-lw-why-loaded", "1");
    fillWhy(details);
  }, true);

  window.addEventListener("pagehide", function () { flush(true); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });

  window.loopwise = loopwise;
})(window);
