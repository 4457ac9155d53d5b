/* The error summary (error_summary() in _macros.html): focused when the page loads, so a
   screen reader announces the problems first; each link moves focus to its field and scrolls
   the field's label into view with it (a plain #anchor jump would hide the label above the top
   edge, and would not focus a field inside a fieldset legend's group reliably). */
(function () {
  "use strict";

  function focusField(id) {
    var target = document.getElementById(id);
    if (!target) return false;
    var label = document.querySelector('label[for="' + id + '"]');
    var group = target.closest(".usa-form-group, fieldset, .usa-checkbox") || target;
    (label || group).scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
    return true;
  }

  function start() {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) return;
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-focus-target]");
      if (link && focusField(link.getAttribute("data-focus-target"))) event.preventDefault();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
