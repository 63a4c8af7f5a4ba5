function (W, D) {
  "use strict";
  // The source of loopwise.js (classic script) and loopwise.mjs (ES module): loopwise.web.sdk
  // wraps this one function in both builds. Documented in docs/delivery.md.
  var VERSION = "0.2.0", P = "lw_", MAX_BATCH = 50, MAX_QUEUE = 500, FLUSH_MS = 1000;
  var LS = {}, cfg = { writeKey: null, host: "", timeout: 300, requireConsent: false };
  var queue = [], held = [], timer = null, retryMs = FLUSH_MS, decisions = {}, seen = {};
  var page0 = Date.now(), depth = 0, lastPath = null, consentSent = null;
  var nav = W.navigator, loc = W.location;

  function get(k) { try { return W.localStorage.getItem(P + k); } catch (e) { return LS[k] || null; } }
  function put(k, v) {
    LS[k] = v;
    try { v == null ? W.localStorage.removeItem(P + k) : W.localStorage.setItem(P + k, v); } catch (e) { }
  }
  function cookie(v) {
    if (v === undefined) { var m = D.cookie.match(/(?:^|; )lw_aid=([^;]+)/); return m ? decodeURIComponent(m[1]) : null; }
    D.cookie = "lw_aid=" + encodeURIComponent(v) + "; path=/; max-age=" + (v ? 31536000 : 0) + "; samesite=lax";
  }
  function uuid() {
    var c = W.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (ch) {
      var r = Math.random() * 16 | 0; return (ch == "x" ? r : r & 3 | 8).toString(16);
    });
  }
  function anonymousId() {
    var id = get("aid") || cookie();
    if (!id) id = uuid();
    if (get("aid") !== id) put("aid", id);
    if (cookie() !== id) cookie(id);
    return id;
  }
  function json(k) { try { return JSON.parse(get(k) || "null"); } catch (e) { return null; } }
  function url(path) { return cfg.host.replace(/\/+$/, "") + path; }
  function auth() { return { Authorization: "Basic " + W.btoa((cfg.writeKey || "") + ":") }; }

  function pageInfo() {
    return { url: loc.href, path: loc.pathname, referrer: D.referrer, title: D.title, search: loc.search };
  }
  function context() {
    var c = { page: pageInfo(), userAgent: nav.userAgent, locale: nav.language,
      library: { name: "loopwise.js", version: VERSION } };
    try { c.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { }
    var consent = json("consent"), token = get("utok");
    if (consent) c.consent = { categoryPreferences: consent };
    if (token) c.userToken = token;
    return c;
  }
  function allowed() {
    var consent = json("consent");
    return consent ? consent.analytics !== false : !cfg.requireConsent;
  }

  // -- sending: batches, retry with backoff, an offline queue, beacons on page hide ----------
  function enqueue(type, fields) {
    var m = { type: type, messageId: uuid(), timestamp: new Date().toISOString(),
      anonymousId: anonymousId(), context: context() };
    for (var k in fields) if (fields[k] !== undefined) m[k] = fields[k];
    var uid = get("uid");
    if (uid && !m.userId) m.userId = uid;
    // before a choice where consent is required: held in memory, never sent
    if (!allowed()) { if (!json("consent")) held.push(m); return; }
    queue.push(m);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    save();
    queue.length >= MAX_BATCH ? flush() : schedule(FLUSH_MS);
  }
  function save() { put("queue", queue.length ? JSON.stringify(queue) : null); }
  function schedule(ms) { if (timer === null) timer = setTimeout(function () { timer = null; flush(); }, ms); }
  function body(batch) {
    return JSON.stringify({ writeKey: cfg.writeKey, sentAt: new Date().toISOString(), batch: batch });
  }
  function flush(unloading) {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (!cfg.writeKey || !queue.length) return Promise.resolve();
    var sends = [];
    while (queue.length) {
      var batch = queue.splice(0, MAX_BATCH), payload = body(batch);
      // text/plain: a CORS-safe type, so a cross-origin beacon needs no preflight
      if (unloading && nav.sendBeacon &&
          nav.sendBeacon(url("/v1/batch"), new Blob([payload], { type: "text/plain" }))) continue;
      sends.push(post(payload, batch));
    }
    save();
    return Promise.all(sends);
  }
  function post(payload, batch) {
    return W.fetch(url("/v1/batch"), { method: "POST", body: payload, credentials: "omit",
      headers: { "Content-Type": "text/plain" }, keepalive: payload.length < 60000
    }).then(function (r) {
      if (r.status >= 500 || r.status == 429) retry(batch); else retryMs = FLUSH_MS;
    }, function () { retry(batch); });
  }
  function retry(batch) {
    queue = batch.concat(queue).slice(-MAX_QUEUE);
    save();
    retryMs = Math.min(retryMs * 2, 60000);
    schedule(retryMs * (0.5 + Math.random() / 2));
  }

  // -- page views (with single-page-app navigation), time on page and scroll depth ----------
  function leave() {
    if (lastPath === null) return;
    lw.track("Page Left", { path: lastPath, seconds: Math.round((Date.now() - page0) / 1000),
      scroll_depth: depth });
    lastPath = null;
  }
  function onScroll() {
    var h = D.documentElement, total = h.scrollHeight - W.innerHeight;
    var pct = total > 0 ? Math.round(100 * W.scrollY / total) : 100;
    if (pct > depth) depth = Math.min(100, pct);
  }
  function routed() {
    if (loc.pathname + loc.search === lastPath) return;
    leave();
    lw.page();
    if (cfg.slots !== false) fill();
  }

  // -- slots: one decide call for the page; only slot elements wait, never the body ----------
  function slotEls() { return [].slice.call(D.querySelectorAll("[data-loopwise-slot]")); }
  function fillFields(root, content) {
    [].forEach.call(root.querySelectorAll("[data-loopwise-field]"), function (el) {
      var v = content[el.getAttribute("data-loopwise-field")];
      if (v == null) return;
      if (el.tagName == "IMG") { if (/^(https?:\/\/|\/(?!\/))/.test(v)) el.src = v; }
      // text only: content is never parsed as HTML
      else el.textContent = v;
    });
    [].forEach.call(root.querySelectorAll("[data-loopwise-href]"), function (el) {
      var v = content[el.getAttribute("data-loopwise-href")];
      if (typeof v == "string" && /^(https?:\/\/|\/(?!\/))/.test(v)) el.href = v;
    });
  }
  function render(el, s) {
    var custom = renderers[s.slot];
    if (custom) return custom(el, s);
    if (s.kind == "block") { if (s.variant) fillFields(el, s.variant.content); return; }
    var tpl = el.querySelector("template"), box = el.querySelector("[data-loopwise-items]") || el;
    if (!tpl || !s.items.length) return;
    box.textContent = "";
    s.items.forEach(function (item) {
      var node = tpl.content.cloneNode(true), wrap = D.createElement("div");
      wrap.appendChild(node);
      var content = { id: item.id, title: item.title, url: item.url, image: item.image };
      for (var k in item.attributes || {}) content[k] = item.attributes[k];
      fillFields(wrap, content);
      [].forEach.call(wrap.querySelectorAll("*"), function (c) {
        if (c.hasAttribute("data-loopwise-item")) c.setAttribute("data-loopwise-item", item.id);
      });
      while (wrap.firstChild) box.appendChild(wrap.firstChild);
    });
  }
  function reveal(els, state) {
    els.forEach(function (el) { if (!el.getAttribute("data-loopwise-state")) el.setAttribute("data-loopwise-state", state); });
  }
  function decideBody(els) {
    var user = { anonymous_id: anonymousId() }, uid = get("uid"), tok = get("utok");
    if (uid && tok) { user.user_id = uid; user.user_token = tok; }
    return JSON.stringify({ user: user, context: context(), slots: els.map(function (el) {
      var n = +el.getAttribute("data-loopwise-n"), s = { slot: el.getAttribute("data-loopwise-slot") };
      if (n > 0) s.n = n;
      return s;
    }) });
  }
  function fill() {
    var els = slotEls().filter(function (el) { return !el.getAttribute("data-loopwise-decision"); });
    if (!els.length || !cfg.writeKey) { reveal(els, "default"); return Promise.resolve(null); }
    els.forEach(function (el) { el.removeAttribute("data-loopwise-state"); });
    var done = false, started = Date.now();
    setTimeout(function () { if (!done) { done = true; reveal(els, "default"); } }, cfg.timeout);
    return Promise.resolve(consentSent).then(function () {
      return W.fetch(url("/v1/decide"), { method: "POST", credentials: "omit", body: decideBody(els),
        headers: Object.assign({ "Content-Type": "application/json" }, auth()) });
    }).then(function (r) { if (!r.ok) throw Error("decide " + r.status); return r.json(); }).then(function (answer) {
      // too late: the defaults stay (no flash of other content)
      if (done) return answer;
      done = true;
      answer.slots.forEach(function (s) {
        decisions[s.slot] = answer.decision_id;
        els.forEach(function (el) {
          if (el.getAttribute("data-loopwise-slot") != s.slot) return;
          el.setAttribute("data-loopwise-decision", answer.decision_id);
          render(el, s);
          observe(el);
        });
      });
      reveal(els, "filled");
      lw.lastFill = Date.now() - started;
      return answer;
    }).catch(function () { if (!done) { done = true; reveal(els, "default"); } return null; });
  }

  // -- impressions (once per decision and slot, when half visible) and clicks -----------------
  var observer = W.IntersectionObserver && new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { shown(e.target); observer.unobserve(e.target); } });
  }, { threshold: 0.5 });
  function observe(el) { observer ? observer.observe(el) : shown(el); }
  function shown(el) {
    var id = el.getAttribute("data-loopwise-decision"), slot = el.getAttribute("data-loopwise-slot");
    if (!id || seen[id + slot]) return;
    seen[id + slot] = 1;
    lw.track("Content Viewed", { decision_id: id, slot: slot });
  }
  function clicked(e) {
    var t = e.target && e.target.closest ? e.target : null;
    var item = t && t.closest("[data-loopwise-item]"), slot = t && t.closest("[data-loopwise-slot]");
    var id = item && item.getAttribute("data-loopwise-item");
    if (slot && slot.getAttribute("data-loopwise-decision")) {
      lw.track("Content Clicked", { decision_id: slot.getAttribute("data-loopwise-decision"),
        slot: slot.getAttribute("data-loopwise-slot"), item_id: id || null });
    } else if (id) lw.track("Product Clicked", { product_id: id });
  }

  // -- consent: set in the page, from a consent platform (adapter) or IAB TCF v2 --------------
  function setConsent(choices) {
    var next = Object.assign({}, json("consent") || {}, choices);
    put("consent", JSON.stringify(next));
    if (next.analytics === false) { held = []; queue = []; save(); }
    // the choice travels with an event: the server records it and the next decide follows it
    var m = { type: "track", event: "Consent Updated", messageId: uuid(), anonymousId: anonymousId(),
      timestamp: new Date().toISOString(), context: context(), properties: {} };
    consentSent = cfg.writeKey ? W.fetch(url("/v1/batch"), { method: "POST", credentials: "omit",
      keepalive: true, headers: { "Content-Type": "text/plain" }, body: body([m]) }).catch(function () {}) : null;
    if (allowed()) { queue = queue.concat(held); held = []; save(); schedule(0); }
    return consentSent;
  }
  function tcf() {
    if (typeof W.__tcfapi != "function") return;
    W.__tcfapi("addEventListener", 2, function (d, ok) {
      if (!ok || !d || (d.eventStatus != "tcloaded" && d.eventStatus != "useractioncomplete")) return;
      var p = (d.purpose && d.purpose.consents) || {};
      lw.consent.set({ analytics: !!(p[1] && p[8]), personalization: !!(p[1] && p[5] && p[6]),
        marketing: !!(p[1] && p[3] && p[4]) });
    });
  }

  var renderers = {};
  var lw = {
    VERSION: VERSION,
    init: function (o) {
      o = o || {};
      for (var k in o) cfg[k] = o[k];
      if (o.anonymousId) { put("aid", String(o.anonymousId)); cookie(String(o.anonymousId)); }
      if (o.userId) { put("uid", String(o.userId)); put("utok", o.userToken || null); }
      var saved = json("queue");
      if (saved && saved.length) queue = saved.concat(queue).slice(-MAX_QUEUE);
      if (!lw.ready) {
        lw.ready = true;
        tcf();
        D.addEventListener("click", clicked, true);
        W.addEventListener("scroll", onScroll, { passive: true });
        W.addEventListener("online", function () { flush(); });
        W.addEventListener("pagehide", function () { leave(); flush(true); });
        D.addEventListener("visibilitychange", function () { if (D.visibilityState == "hidden") flush(true); });
        ["pushState", "replaceState"].forEach(function (name) {
          var original = W.history[name];
          W.history[name] = function () { var r = original.apply(this, arguments); setTimeout(routed); return r; };
        });
        W.addEventListener("popstate", routed);
        if (cfg.autoPage !== false || cfg.slots !== false) {
          var start = function () {
            slotEls().forEach(function (el) { if (el.getAttribute("data-loopwise-decision")) observe(el); });
            cfg.autoPage !== false ? routed() : fill();
          };
          D.readyState == "loading" ? D.addEventListener("DOMContentLoaded", start) : start();
        }
      }
      if (queue.length) schedule(0);
      return lw;
    },
    page: function (name, props) {
      if (typeof name == "object" && name) { props = name; name = null; }
      var p = Object.assign(pageInfo(), props || {});
      lastPath = loc.pathname + loc.search; page0 = Date.now(); depth = 0; onScroll();
      enqueue("page", { name: name || p.name || D.title, properties: p });
    },
    track: function (event, props) { enqueue("track", { event: String(event), properties: props || {} }); },
    identify: function (userId, traits, options) {
      if (userId) { put("uid", String(userId)); put("utok", (options && options.userToken) || null); }
      enqueue("identify", { userId: userId ? String(userId) : undefined, traits: traits || {} });
    },
    alias: function (userId, previousId) {
      enqueue("alias", { userId: String(userId), previousId: previousId || get("uid") || anonymousId() });
    },
    reset: function () { ["uid", "utok", "aid", "queue"].forEach(function (k) { put(k, null); }); cookie(""); },
    user: function () { return { id: function () { return get("uid"); }, anonymousId: anonymousId }; },
    flush: function () { return flush(false); },
    decide: fill,
    render: function (slot, fn) { renderers[slot] = fn; },
    why: function (slot) {
      var el = D.querySelector('[data-loopwise-slot="' + slot + '"][data-loopwise-decision]');
      var id = decisions[slot] || (el && el.getAttribute("data-loopwise-decision")) || slot;
      return W.fetch(url("/v1/decisions/" + encodeURIComponent(id) + "/why"), { headers: auth(), credentials: "omit" })
        .then(function (r) { if (!r.ok) throw Error("why " + r.status); return r.json(); })
        .then(function (a) { return a.slots.filter(function (s) { return s.slot == slot; })[0] || a; });
    },
    consent: {
      set: setConsent,
      get: function () { return json("consent"); },
      adapter: function (subscribe) { subscribe(function (choices) { lw.consent.set(choices); }); }
    }
  };
  // anti-flicker: slot elements (only they) stay hidden until decided or the timeout passes
  var style = D.createElement("style");
  style.textContent = "[data-loopwise-slot]:not([data-loopwise-state]){visibility:hidden}";
  (D.head || D.documentElement).appendChild(style);
  // a page that never calls init() shows its defaults after the timeout
  function failsafe() { setTimeout(function () { if (!lw.ready) reveal(slotEls(), "default"); }, cfg.timeout); }
  D.readyState == "loading" ? D.addEventListener("DOMContentLoaded", failsafe) : failsafe();
  var me = D.currentScript;
  if (me && me.getAttribute("data-write-key")) {
    var wait = +me.getAttribute("data-timeout");  // ms slots may stay hidden (default 300)
    lw.init({ writeKey: me.getAttribute("data-write-key"),
      host: me.getAttribute("data-host") || me.src.replace(/\/[^/]*$/, ""),
      requireConsent: me.hasAttribute("data-require-consent"), timeout: wait > 0 ? wait : cfg.timeout });
  }
  return lw;
}
