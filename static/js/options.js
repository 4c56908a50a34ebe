// Options tab: a rule's "match" and "text" fields only matter when the condition is not
// "All messages", so they are hidden then (the server ignores them either way).
(function () {
  "use strict";
  function sync(select) {
    var fieldset = select.closest(".options-condition");
    if (!fieldset) return;
    var all = select.value === "all";
    fieldset.querySelectorAll("[data-condition-detail]").forEach(function (el) {
      el.hidden = all;
    });
  }
  document.querySelectorAll(".options-condition select[name=field]").forEach(function (select) {
    sync(select);
    select.addEventListener("change", function () { sync(select); });
  });
})();
