// Contacts tab: "add another" rows for address and phone formsets, and confirmations.
(function () {
  "use strict";
  document.querySelectorAll(".js-formset").forEach(function (fieldset) {
    var prefix = fieldset.dataset.prefix;
    var total = fieldset.querySelector("#id_" + prefix + "-TOTAL_FORMS");
    var template = fieldset.querySelector("template.js-empty");
    var rows = fieldset.querySelector(".js-rows");
    var button = fieldset.querySelector(".js-add-row");
    if (!total || !template || !rows || !button) return;
    button.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var row = holder.firstElementChild;
      rows.appendChild(row);
      total.value = String(index + 1);
      var input = row.querySelector("input");
      if (input) input.focus();
    });
  });
  document.querySelectorAll("form.js-confirm").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "?")) event.preventDefault();
    });
  });
})();
