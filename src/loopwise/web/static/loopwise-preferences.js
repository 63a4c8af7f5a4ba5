/*! <loopwise-preferences>: a ready-made privacy-choices element for loopwise.js (docs/delivery.md).
 *
 *   <script src="/loopwise-preferences.js" defer></script>
 *   <loopwise-preferences></loopwise-preferences>
 *
 * Click 1 opens the panel, click 2 ("Opt out of everything") withdraws analytics, personalization
 * and marketing at once; single categories can be switched and saved too. Choices go through
 * loopwise.consent.set, so the server records them and the next decide follows them.
 */
(function (W, D) {
  "use strict";
  var CATEGORIES = [
    ["analytics", "Analytics", "Count visits and actions to improve the site."],
    ["personalization", "Personalization", "Choose content for you from what you do here."],
    ["marketing", "Marketing", "Use your activity for offers and campaigns."]
  ];

  function current() {
    var lw = W.loopwise;
    return (lw && lw.consent.get()) || {};
  }

  function choose(choices, element) {
    if (W.loopwise) W.loopwise.consent.set(choices);
    element.dispatchEvent(new CustomEvent("loopwise-consent", { detail: choices, bubbles: true }));
    element.close();
  }

  class LoopwisePreferences extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      var root = this.attachShadow({ mode: "open" });
      var label = this.getAttribute("label") || "Privacy choices";
      root.innerHTML =
        "<style>:host{font:inherit}button{font:inherit;cursor:pointer}" +
        "[part=panel]{border:1px solid #ccc;padding:.75em;margin-top:.5em;max-width:28em;background:#fff}" +
        "label{display:block;margin:.4em 0}small{display:block;color:#555}</style>" +
        "<button part=open type=button></button><div part=panel hidden></div>";
      var open = root.querySelector("[part=open]");
      open.textContent = label;
      open.addEventListener("click", this.toggle.bind(this));
    }

    toggle() {
      var panel = this.shadowRoot.querySelector("[part=panel]");
      if (!panel.hidden) { this.close(); return; }
      var self = this, state = current();
      panel.textContent = "";
      var out = D.createElement("button");
      out.type = "button";
      out.setAttribute("part", "opt-out");
      out.textContent = "Opt out of everything";
      out.addEventListener("click", function () {
        choose({ analytics: false, personalization: false, marketing: false }, self);
      });
      panel.appendChild(out);
      var boxes = {};
      CATEGORIES.forEach(function (c) {
        var row = D.createElement("label"), box = D.createElement("input"), hint = D.createElement("small");
        box.type = "checkbox";
        box.name = c[0];
        box.checked = state[c[0]] !== false;
        boxes[c[0]] = box;
        row.appendChild(box);
        row.appendChild(D.createTextNode(" " + c[1]));
        hint.textContent = c[2];
        row.appendChild(hint);
        panel.appendChild(row);
      });
      var save = D.createElement("button");
      save.type = "button";
      save.setAttribute("part", "save");
      save.textContent = "Save choices";
      save.addEventListener("click", function () {
        var choices = {};
        for (var name in boxes) choices[name] = boxes[name].checked;
        choose(choices, self);
      });
      panel.appendChild(save);
      panel.hidden = false;
    }

    close() {
      this.shadowRoot.querySelector("[part=panel]").hidden = true;
    }
  }

  if (!W.customElements.get("loopwise-preferences")) {
    W.customElements.define("loopwise-preferences", LoopwisePreferences);
  }
})(window, document);
