// Kiosk behaviour that needs the browser: barcode-scanner bursts and the idle reset.
// No inline script anywhere (strict CSP): everything is wired from data attributes.
(function () {
  "use strict";

  var body = document.body;

  // --- Barcode scanner -------------------------------------------------------
  // A scanner "types" its code much faster than any person, then presses Enter.
  // Keys arriving within SCAN_GAP_MS of each other form a burst (a gap longer than
  // that starts a new one); a burst of at least SCAN_MIN_CHARS whose keys came on
  // average faster than SCAN_MEAN_MS, followed by Enter, is a scan, wherever the
  // focus is. The mean, not each gap, decides: a busy tablet may stall one key.
  var SCAN_GAP_MS = 100;
  var SCAN_MEAN_MS = 35;
  var SCAN_MIN_CHARS = 6;
  // From 4 keys at under 35 ms each (nobody types that fast) a burst may stall for up to
  // SCAN_LONG_GAP_MS: the whole burst must still average under 35 ms for Enter to make
  // it a scan, so a person typing on after a pause never makes one (and a short code
  // survives a short stall only; a long one, a card or a cart, a stall of a busy page).
  var SCAN_LONG_CHARS = 4;
  var SCAN_LONG_GAP_MS = 1500;
  var burst = "";
  var burstStart = 0;
  var lastKeyAt = 0;

  // A staff page that takes scans in place (preparation) gets the code in its form and
  // htmx submits it. htmx drops a submit while the form's previous request is still in
  // flight, so scans that come faster than the answers wait in this queue, in order:
  // a scanner can go straight on and no item is lost.
  var scanQueue = [];
  var scanBusy = false;

  function submitScan(code) {
    var form = document.querySelector("form[data-scan-form]");
    if (!form) {
      scanQueue = [];
      return;
    }
    var input = form.querySelector("input[name=code]");
    scanBusy = true;
    clearTimeout(scanWatchdog);
    scanWatchdog = setTimeout(scanDone, 15000);
    input.value = code;
    form.requestSubmit();
    input.value = "";
    input.focus();
  }

  function nextScan() {
    if (!scanBusy && scanQueue.length) {
      submitScan(scanQueue.shift());
    }
  }

  function scanDone() {
    scanBusy = false;
    clearTimeout(scanWatchdog);
    // Send the next one once htmx is done with this answer (new form wired up).
    setTimeout(nextScan, 0);
  }

  // The answer replaces the form (outerHTML), so listen where the events still arrive:
  // afterSettle for an answer shown, the error events for none. A watchdog frees the
  // queue if an answer never comes.
  var scanWatchdog = null;
  ["htmx:sendError", "htmx:responseError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, function () {
      if (scanBusy) {
        scanDone();
      }
    });
  });

  // A pickup or reservation QR (KQ1./KR1. tokens) is never an item to put in a bag:
  // even on the preparation screen it opens the counter's scan page.
  var TICKET_QR = /^K[QR]1\./;

  function openScan(code) {
    if (document.querySelector("form[data-scan-form]") && !TICKET_QR.test(code)) {
      scanQueue.push(code);
      nextScan();
      return;
    }
    var status = document.getElementById("scan-status");
    if (status) {
      status.textContent = isCard(code) ? "…" : "… " + code; // a card's code is not shown
      status.classList.add("is-on");
    }
    // Each page names where its scans go; a staff page never falls back to the shopper
    // kiosk's /scan, whatever template it came from.
    var fallback = body.classList.contains("staff") ? "/staff/scan" : "/scan";
    if (isCard(code)) {
      // « Ma carte »: by POST to the kiosk's (or the counter's) own scan, never in a URL.
      postScan(fallback, code);
      return;
    }
    var url = (body.dataset.scanUrl || fallback) + "?code=" + encodeURIComponent(code);
    window.location.assign(url);
  }

  // --- Customer cards go by POST ----------------------------------------------
  // A « Ma carte » code (a KQ1 token whose kind is "card") must never land in a URL, the
  // browser's history or an access log: it is posted in a form built here (the page's
  // CSRF token included; no inline script), and the server refuses one in a GET.
  var B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

  function b32text(text) {
    var bits = 0;
    var value = 0;
    var out = "";
    for (var i = 0; i < text.length; i++) {
      var n = B32.indexOf(text.charAt(i));
      if (n < 0) {
        return null;
      }
      value = (value << 5) | n;
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((value >> bits) & 255);
      }
    }
    return out;
  }

  function isCard(code) {
    var parts = String(code || "").split(".");
    if (parts.length !== 3 || parts[0] !== "KQ1" || parts[1].length > 2000) {
      return false;
    }
    try {
      var claims = JSON.parse(b32text(parts[1]) || "null");
      return !!claims && claims.k === "card";
    } catch (e) {
      return false;
    }
  }

  function csrfToken() {
    try {
      var headers = JSON.parse(body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) {
        return headers["X-CSRFToken"];
      }
    } catch (e) {
      // fall through to a form's token
    }
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function postScan(action, code) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.hidden = true;
    [
      ["csrf_token", csrfToken()],
      ["code", code],
    ].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    body.appendChild(form);
    form.submit();
  }

  // The camera (cart-camera.js) sends what it reads the same way.
  window.kioskScan = { isCard: isCard, post: postScan };

  document.addEventListener(
    "keydown",
    function (event) {
      // When the key was pressed, not when a busy page got round to handling it.
      var now = event.timeStamp || performance.now();
      if (event.key === "Enter") {
        var mean = burst.length > 1 ? (lastKeyAt - burstStart) / (burst.length - 1) : Infinity;
        var isScan =
          burst.length >= SCAN_MIN_CHARS &&
          now - lastKeyAt < (burst.length >= SCAN_LONG_CHARS ? SCAN_LONG_GAP_MS : SCAN_GAP_MS) &&
          mean <= SCAN_MEAN_MS;
        var code = burst;
        burst = "";
        if (isScan) {
          event.preventDefault();
          event.stopPropagation();
          openScan(code);
        }
        return;
      }
      if (event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      // A long scan in progress (a cart QR code is ~1,000 characters) may stall for
      // longer when the page is busy: once a burst is clearly a scanner's, allow it.
      var meanSoFar = burst.length > 1 ? (lastKeyAt - burstStart) / (burst.length - 1) : Infinity;
      var gapLimit =
        burst.length >= SCAN_LONG_CHARS && meanSoFar <= SCAN_MEAN_MS ? SCAN_LONG_GAP_MS : SCAN_GAP_MS;
      if (now - lastKeyAt > gapLimit || burst === "") {
        burst = event.key;
        burstStart = now;
      } else {
        burst += event.key;
      }
      lastKeyAt = now;
    },
    true
  );

  // --- Scan feedback cue -----------------------------------------------------
  // An element with data-cue="ok" or "error" arriving on screen (htmx swap or page
  // load) plays a short beep: high for right, low and longer for wrong. WebAudio
  // synthesises it, so there is no sound file to ship or fetch.
  var audio = null;

  function beep(kind) {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      return;
    }
    try {
      audio = audio || new Ctx();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      var ok = kind === "ok";
      osc.type = ok ? "sine" : "square";
      osc.frequency.value = ok ? 1320 : 220;
      gain.gain.value = 0.15;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + (ok ? 0.12 : 0.4));
    } catch (e) {
      // No sound is better than a broken page.
    }
  }

  function cue(root) {
    var el = root && root.querySelector ? root.querySelector("[data-cue]") : null;
    if (el) {
      body.dataset.lastCue = el.dataset.cue;
      beep(el.dataset.cue);
    }
  }

  document.addEventListener("htmx:afterSettle", function () {
    if (scanBusy) {
      scanDone();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    cue(document.getElementById("prep") || event.detail.target);
    var input = document.querySelector("form[data-scan-form] input[name=code]");
    if (input) {
      input.focus();
    }
  });
  cue(document);

  // --- Idle reset ------------------------------------------------------------
  // Untouched for data-idle-seconds: ask "still there?" for data-countdown-seconds,
  // then post the reset form, which clears the shopper's session server-side.
  var idleSeconds = parseInt(body.dataset.idleSeconds || "0", 10);
  var countdownSeconds = parseInt(body.dataset.countdownSeconds || "10", 10);
  var overlay = document.getElementById("idle");
  var countEl = document.getElementById("idle-count");
  var resetForm = document.getElementById("idle-reset");
  var stayButton = document.getElementById("idle-stay");
  var idleTimer = null;
  var tickTimer = null;
  var remaining = 0;

  function hideOverlay() {
    if (tickTimer) {
      clearInterval(tickTimer);
      tickTimer = null;
    }
    if (overlay) {
      overlay.hidden = true;
    }
  }

  function tick() {
    remaining -= 1;
    if (countEl) {
      countEl.textContent = String(Math.max(remaining, 0));
    }
    if (remaining <= 0) {
      clearInterval(tickTimer);
      tickTimer = null;
      if (resetForm) {
        forgetHere(); // submit() fires no submit event
        resetForm.submit();
      }
    }
  }

  function showOverlay() {
    remaining = countdownSeconds;
    if (countEl) {
      countEl.textContent = String(remaining);
    }
    overlay.hidden = false;
    if (stayButton) {
      stayButton.focus();
    }
    tickTimer = setInterval(tick, 1000);
  }

  function activity() {
    if (tickTimer) {
      return; // while the question is shown, only the buttons answer it
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(showOverlay, idleSeconds * 1000);
  }

  // The reset forgets the shopper in this browser too: nothing left in its storage, the
  // camera stopped and its last frame wiped (cart-camera.js listens for kiosk:forget)
  // before the page even goes; the server clears the session.
  function forgetHere() {
    document.dispatchEvent(new CustomEvent("kiosk:forget"));
    [window.sessionStorage, window.localStorage].forEach(function (store) {
      try {
        store.clear();
      } catch (e) {
        // No storage at all: nothing to forget.
      }
    });
  }
  if (resetForm) {
    resetForm.addEventListener("submit", forgetHere);
  }
  // The attract screen, where the kiosk rests between shoppers, starts from nothing too
  // (htmx notes the page's path in sessionStorage as it loads: gone here).
  if (body.classList.contains("attract-page")) {
    forgetHere();
  }

  if (idleSeconds > 0 && overlay) {
    ["pointerdown", "keydown", "touchstart", "wheel", "scroll"].forEach(function (name) {
      window.addEventListener(name, activity, { passive: true, capture: true });
    });
    if (stayButton) {
      stayButton.addEventListener("click", function () {
        hideOverlay();
        activity();
      });
    }
    activity();
  }

  // --- Print buttons -----------------------------------------------------------
  // A reservation ticket prints from the page itself (the print stylesheet keeps the
  // ticket only); no inline handler, as the CSP forbids them.
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-print]") : null;
    if (target) {
      event.preventDefault();
      window.print();
    }
  });

  // --- Product page: "Ajouté" where the shopper looks ----------------------------
  // "Ajouter" posts and the server answers with the product page again, the button
  // itself saying "Ajouté". Keep the shopper's place on the page across that reload,
  // and set the action bar's live region again once loaded: a screen reader does not
  // read out what a live region already held when the page arrived. The place is the
  // window's scroll and <main>'s: in the accessible mode the page scrolls inside <main>.
  var KEEP_SCROLL = "kiosk.keepScroll";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute && form.hasAttribute("data-keep-scroll")) {
      var main = document.querySelector("main");
      var mainTop = main ? Math.round(main.scrollTop) : 0;
      try {
        sessionStorage.setItem(
          KEEP_SCROLL,
          location.pathname + "|" + Math.round(window.scrollY) + "|" + mainTop
        );
      } catch (e) {
        // No storage (private mode): the page opens at its top, nothing else changes.
      }
    }
  });
  var keptScroll = null;
  try {
    keptScroll = sessionStorage.getItem(KEEP_SCROLL);
    sessionStorage.removeItem(KEEP_SCROLL);
  } catch (e) {
    keptScroll = null;
  }
  if (keptScroll) {
    var kept = keptScroll.split("|");
    if (kept[0] === location.pathname) {
      window.scrollTo(0, parseInt(kept[1], 10) || 0);
      var keptMain = document.querySelector("main");
      if (keptMain) {
        keptMain.scrollTop = parseInt(kept[2], 10) || 0;
      }
    }
  }
  var buyStatus = document.getElementById("buy-status");
  if (buyStatus && buyStatus.textContent.trim()) {
    var said = buyStatus.textContent;
    buyStatus.textContent = "";
    setTimeout(function () {
      buyStatus.textContent = said;
    }, 300);
  }

  // --- Forms that must go once -------------------------------------------------
  // "Reserve" and "place the order" disable their button on the first tap; the server
  // also recognises a second submission of the same form by its request id.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-once")) {
      return;
    }
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
    });
  });
})();
