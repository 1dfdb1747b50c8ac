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

  // A drug package's scan: the scanner's Enter reads the barcode (the form's "Read the scan" button),
  // never records the medication with whatever else the form holds.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || !(target instanceof HTMLElement) || !target.hasAttribute("data-scan-read")) return;
    var read = target.form && target.form.querySelector("button[name=read_scan]");
    if (!(read instanceof HTMLButtonElement)) return;
    event.preventDefault();
    read.click();
  });

  // A patient search's results are radios: Enter on one picks that patient and goes on to the next
  // part of the form, instead of submitting the form with whatever was picked before.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || !(target instanceof HTMLInputElement) || target.type !== "radio") return;
    if (!target.closest(".patient-results")) return;
    event.preventDefault();
    if (!target.checked) {
      target.checked = true;
      target.dispatchEvent(new Event("change", { bubbles: true }));
    }
    var fieldset = target.closest("fieldset");
    var next = fieldset && fieldset.nextElementSibling;
    var field = next && next.querySelector("input:not([type=hidden]), select, textarea");
    if (field instanceof HTMLElement) field.focus();
  });

  // A search that found exactly one patient picks them (the radio comes checked): tell the needs,
  // which fetch what carries over from the patient on a change, as a click on it would.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement) || target.id !== "patient-results") return;
    var picked = target.querySelector("input[type=radio][name=patient]:checked");
    if (picked) picked.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // Down arrow from the search box goes to the first result, so the keyboard can pick one.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "ArrowDown" || !(target instanceof HTMLElement) || target.id !== "patient-search") return;
    var first = document.querySelector("#patient-results .patient-results input[type=radio]");
    if (first instanceof HTMLElement) {
      event.preventDefault();
      first.focus();
    }
  });
})();
