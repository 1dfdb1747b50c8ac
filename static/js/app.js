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

  // Procedure documentation is kept as a draft as it is typed (the form's hx-post, debounced). Before
  // another form on the page leaves it (a medication recorded, an override), typing not yet kept is
  // sent first; the documentation's own Save sends everything itself, so a late draft is dropped.
  function draftForm() {
    return document.querySelector("form[data-draft-form]");
  }
  ["input", "change"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var form = draftForm();
      if (form && form.contains(event.target)) form.dataset.dirty = "1";
    });
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = draftForm();
    if (!form || event.detail.elt !== form) return;
    if (form.dataset.leaving) {
      event.preventDefault();
      return;
    }
    delete form.dataset.dirty;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = draftForm();
    if (form && event.detail.elt === form && !event.detail.successful) form.dataset.dirty = "1";
  });
  // The draft's refusal (409) carries the reason to show where the draft's status is.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = draftForm();
    if (form && event.detail.elt === form && event.detail.xhr.status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("submit", function (event) {
    var form = draftForm();
    var other = event.target;
    if (!form || !(other instanceof HTMLFormElement)) return;
    if (other === form) {
      form.dataset.leaving = "1";
      return;
    }
    if (form.dataset.leaving || !form.dataset.dirty || !window.fetch) return;
    event.preventDefault();
    var submitter = event.submitter;
    form.dataset.leaving = "1";
    var go = function () {
      if (submitter) other.requestSubmit(submitter);
      else other.requestSubmit();
    };
    fetch(form.getAttribute("hx-post"), {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-User-Activity": "1" },
    }).then(go, go);
  });

  // Back to this page from the browser's cache: drafts go on being kept.
  window.addEventListener("pageshow", function () {
    var form = draftForm();
    if (form) delete form.dataset.leaving;
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
  // A live list that refreshes itself (hx-trigger every 15s) waits while one of its "Patient left"
  // panels is open, so the morph doesn't close it under the hand about to confirm.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt instanceof HTMLElement && elt.hasAttribute("data-hold-while-open") && elt.querySelector("details[open]")) {
      event.preventDefault();
    }
  });
})();
