// Tasks tab: confirmation before deleting a task or a list.
(function () {
  "use strict";
  document.querySelectorAll("form.js-confirm").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "?")) event.preventDefault();
    });
  });
})();
