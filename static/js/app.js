// The shell's behaviour: no inline scripts (strict CSP), everything degrades without JS.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // On a narrow screen the tab bar scrolls sideways: bring the current tab into view.
    var current = document.querySelector(".tabs [aria-current=page]");
    if (current && current.scrollIntoView) {
      var tabs = current.parentElement;
      if (tabs.scrollWidth > tabs.clientWidth) {
        tabs.scrollLeft = current.offsetLeft - (tabs.clientWidth - current.offsetWidth) / 2;
      }
    }

    // The language switch applies at once only when picked with a pointer (mouse, touch):
    // arrow keys also fire "change" on a closed select, and submitting then would navigate
    // away before a keyboard user reaches the wanted language. Keyboard users (and no-JS
    // visitors) apply their choice with the visible button.
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      var select = form.querySelector("select");
      if (!select) return;
      var byPointer = false;
      select.addEventListener("pointerdown", function () { byPointer = true; });
      select.addEventListener("keydown", function () { byPointer = false; });
      select.addEventListener("change", function () {
        if (!byPointer) return;
        if (form.requestSubmit) form.requestSubmit();
        else form.submit();
      });
    });

    // "Copy" buttons (recovery codes, TOTP secret): data-copy-target="#id".
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.querySelector(button.getAttribute("data-copy-target"));
        if (!target || !navigator.clipboard) return;
        var text = "value" in target && target.value !== undefined ? target.value : target.textContent;
        navigator.clipboard.writeText(text.trim()).then(function () {
          button.setAttribute("data-copied", "true");
        });
      });
    });
  });
})();
