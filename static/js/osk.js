// The kiosk's on-screen keyboard (templates/kiosk/_osk.html): a kiosk has no keyboard.
// Tapping the search field opens it; each key types into the field and sends the same
// `input` event a real keystroke does, so htmx's live search (hx-trigger="input
// changed…") answers as if the shopper had typed. No inline script or style (strict
// CSP): the words on the keys come from the template (translated), the layouts from here.
(function () {
  "use strict";

  var osk = document.getElementById("osk");
  if (!osk) {
    return;
  }
  var input = document.getElementById(osk.dataset.for || "q");
  if (!input) {
    return;
  }
  var rowsBox = osk.querySelector("[data-osk-rows]");
  var accentsBox = osk.querySelector("[data-osk-accents]");
  var layerKey = osk.querySelector("[data-osk=layer]");
  var body = document.body;

  // Lower case only: the search ignores case. Each string is one row of keys.
  var LAYOUTS = {
    azerty: ["azertyuiop", "qsdfghjklm", "wxcvbn'-"],
    qwerty: ["qwertyuiop", "asdfghjkl'", "zxcvbnm-"],
    digits: ["1234567890", "-'./&+()%", "°€#*@,:"],
  };
  var ACCENTS = "éèêàçùâôîïëüœ";
  var letters = LAYOUTS[osk.dataset.layout] ? osk.dataset.layout : "qwerty";
  var layer = letters;

  function key(ch) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "osk-key";
    button.dataset.key = ch;
    button.textContent = ch;
    return button;
  }

  function row(chars) {
    var div = document.createElement("div");
    div.className = "osk-row";
    Array.from(chars).forEach(function (ch) {
      div.appendChild(key(ch));
    });
    return div;
  }

  function drawLayer(name) {
    layer = name;
    rowsBox.textContent = "";
    LAYOUTS[name].forEach(function (chars) {
      rowsBox.appendChild(row(chars));
    });
    osk.dataset.layer = name === "digits" ? "digits" : "letters";
    if (layerKey) {
      var next = name === "digits" ? "letters" : "digits";
      layerKey.textContent = layerKey.dataset[next + "Text"];
      layerKey.setAttribute("aria-label", layerKey.dataset[next + "Label"]);
    }
  }

  drawLayer(letters);
  Array.from(ACCENTS).forEach(function (ch) {
    accentsBox.appendChild(key(ch));
  });

  // --- Typing ------------------------------------------------------------------
  // Where the caret is when the field has the focus, at the end otherwise.
  function selection() {
    var end = input.value.length;
    if (document.activeElement !== input) {
      return [end, end];
    }
    var start = input.selectionStart;
    var stop = input.selectionEnd;
    return start === null || stop === null ? [end, end] : [start, stop];
  }

  function setValue(value, caret, inputType, data) {
    input.value = value;
    if (document.activeElement === input) {
      try {
        input.setSelectionRange(caret, caret);
      } catch (e) {
        // Some input types have no caret: typing still works at the end.
      }
    }
    var event;
    try {
      event = new InputEvent("input", { bubbles: true, inputType: inputType, data: data });
    } catch (e) {
      event = new Event("input", { bubbles: true });
    }
    input.dispatchEvent(event);
  }

  function insert(text) {
    var sel = selection();
    var value = input.value;
    var max = input.maxLength > 0 ? input.maxLength : Infinity;
    if (value.length - (sel[1] - sel[0]) + text.length > max) {
      return;
    }
    setValue(value.slice(0, sel[0]) + text + value.slice(sel[1]), sel[0] + text.length, "insertText", text);
  }

  function backspace() {
    var sel = selection();
    var value = input.value;
    if (sel[0] === sel[1]) {
      if (sel[0] === 0) {
        return;
      }
      // One character, even a letter outside the basic plane.
      var before = Array.from(value.slice(0, sel[0]));
      before.pop();
      sel[0] = before.join("").length;
    }
    setValue(value.slice(0, sel[0]) + value.slice(sel[1]), sel[0], "deleteContentBackward", null);
  }

  function clear() {
    if (input.value !== "") {
      setValue("", 0, "deleteContent", null);
    }
  }

  // --- Opening and closing ---------------------------------------------------
  // While open, the page keeps room for the keyboard at its foot (CSS: body.osk-open)
  // so results scroll above it, and the search form stays in sight under the top bar.
  function topOffset() {
    var bar = document.querySelector(".topbar");
    if (!bar || getComputedStyle(bar).position !== "sticky") {
      return 0;
    }
    return bar.getBoundingClientRect().height;
  }

  function open() {
    if (!osk.hidden) {
      return;
    }
    osk.hidden = false;
    body.classList.add("osk-open");
    body.style.setProperty("--osk-top", topOffset() + "px");
    body.style.setProperty("--osk-h", osk.getBoundingClientRect().height + "px");
  }

  // The box the page scrolls in: the window, or <main> when a layout scrolls it in its
  // own box (the accessible mode keeps every control in the lower part that way).
  function scroller() {
    var main = document.querySelector("main");
    if (main && /(auto|scroll)/.test(getComputedStyle(main).overflowY)) {
      return main;
    }
    return null;
  }

  // Too little room left between the field and the keyboard for results: bring the
  // field up (it stays sticky) so the results show above the keys. Only once the tap
  // is over (on its click): scrolling under a finger still down would move the tap.
  function makeRoom() {
    var form = input.form || input;
    var box = scroller();
    var top = box ? box.getBoundingClientRect().top : topOffset();
    var room = osk.getBoundingClientRect().top - form.getBoundingClientRect().bottom;
    var visible = osk.getBoundingClientRect().top - top;
    if (room < visible * 0.5) {
      var by = form.getBoundingClientRect().top - top;
      if (box) {
        box.scrollTop += by;
      } else {
        window.scrollBy(0, by);
      }
    }
  }

  function close() {
    if (osk.hidden) {
      return;
    }
    osk.hidden = true;
    body.classList.remove("osk-open");
    if (layer === "digits") {
      drawLayer(letters);
    }
  }

  input.addEventListener("focus", open);
  input.addEventListener("click", function () {
    open();
    makeRoom();
  });

  // A tap anywhere else than the field or the keyboard puts the keyboard away.
  document.addEventListener(
    "pointerdown",
    function (event) {
      if (!osk.hidden && !osk.contains(event.target) && event.target !== input) {
        close();
      }
    },
    true
  );

  // Keep the focus (and caret) in the field: a key tapped must not take it.
  osk.addEventListener("mousedown", function (event) {
    event.preventDefault();
  });

  // Fingers get a pressed look at once (no hover on a touch screen).
  function release() {
    osk.querySelectorAll(".is-down").forEach(function (el) {
      el.classList.remove("is-down");
    });
  }
  osk.addEventListener("pointerdown", function (event) {
    var target = event.target.closest(".osk-key");
    if (target) {
      target.classList.add("is-down");
    }
  });
  ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
    osk.addEventListener(name, release);
  });

  // `click` comes from a finger, a mouse and the Enter key alike.
  osk.addEventListener("click", function (event) {
    var target = event.target.closest(".osk-key");
    if (!target) {
      return;
    }
    if (target.dataset.key) {
      insert(target.dataset.key);
      return;
    }
    switch (target.dataset.osk) {
      case "space":
        insert(" ");
        break;
      case "backspace":
        backspace();
        break;
      case "clear":
        clear();
        break;
      case "layer":
        drawLayer(layer === "digits" ? letters : "digits");
        break;
      case "enter":
        // Search now (the field's `search` trigger, no typing delay) and show the
        // results on the whole screen.
        input.dispatchEvent(new Event("search", { bubbles: true }));
        close();
        break;
    }
  });
})();
