// Head-office fleet dashboard. Sections refresh themselves (htmx polling); this keeps
// a refresh from getting in the way: a section marked data-pause-when-busy is not
// refreshed while a field in it has focus or text typed (a discard reason), and
// <details> that were open stay open after a refresh.
(function () {
  "use strict";
  function busy(section) {
    var active = document.activeElement;
    if (active && section.contains(active) && active.matches("input, textarea, select")) {
      return true;
    }
    var fields = section.querySelectorAll("input[type=text], textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) return true;
    }
    return false;
  }
  var openIds = [];
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt.hasAttribute("data-pause-when-busy") && busy(elt)) evt.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var open = evt.detail.target.querySelectorAll("details[open][id]");
    openIds = Array.prototype.map.call(open, function (d) { return d.id; });
  });
  document.addEventListener("htmx:afterSettle", function () {
    openIds.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.open = true;
    });
    openIds = [];
  });
  // A link to a store's parked transactions opens them.
  function openFromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") el.open = true;
  }
  window.addEventListener("hashchange", openFromHash);
  document.addEventListener("DOMContentLoaded", openFromHash);
  // A date and time field reads as people say it in French ("24 nov. 2026, 09:00") under
  // the browser's own control, whatever language the browser draws that control in.
  var french = window.Intl && new Intl.DateTimeFormat("fr-FR", {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit"
  });
  document.addEventListener("input", function (evt) {
    var field = evt.target;
    if (!french || !field.matches || !field.matches("input[type=datetime-local]")) return;
    var out = document.querySelector('.when-fr[data-reads="' + field.id + '"]');
    if (!out) return;
    var when = field.value ? new Date(field.value) : null;  // a wall time, read as local
    out.textContent = when && !isNaN(when) ? french.format(when).replace(" à ", ", ") : "";
  });
})();
