// The phone simulator: each phone's thread opens scrolled to its newest text, as a phone does.
(function () {
  "use strict";
  function scrollThreads() {
    document.querySelectorAll("ol.sms").forEach(function (thread) {
      thread.scrollTop = thread.scrollHeight;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scrollThreads);
  } else {
    scrollThreads();
  }
})();
