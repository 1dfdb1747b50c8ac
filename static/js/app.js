// Small behaviours that need no inline script (CSP forbids it).
(function () {
  "use strict";
  // A barcode scanner types the id and presses Enter: in a scan field, Enter searches
  // instead of submitting the surrounding form.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && target instanceof HTMLElement && target.hasAttribute("data-scan-field")) {
      event.preventDefault();
      target.dispatchEvent(new Event("search", { bubbles: true }));
    }
  });
})();
