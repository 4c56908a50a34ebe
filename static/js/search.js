// The Search tab: "/" puts the cursor in the search box; the order select re-runs the search.
(function () {
  "use strict";
  var input = document.getElementById("id_q");
  if (!input) return;
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });
  var order = document.getElementById("id_order");
  if (order && input.value) {
    order.addEventListener("change", function () {
      var cursor = order.form.querySelector("input[name=cursor]");
      if (cursor) cursor.value = "";
      order.form.submit();
    });
  }
  if (!input.value && !document.getElementById("search-results")) input.focus();
})();
