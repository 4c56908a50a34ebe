// The Messages tab: keyboard shortcuts, list selection, confirmations. No inline JS (strict CSP).
(function () {
  "use strict";

  var help = document.getElementById("shortcut-help");

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-message-list] [data-row]"));
  }

  function currentIndex(list) {
    var active = document.activeElement;
    for (var i = 0; i < list.length; i++) {
      if (list[i].contains(active)) return i;
    }
    return -1;
  }

  function focusRow(list, index) {
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (row) { row.classList.remove("current"); });
    var row = list[index];
    row.classList.add("current");
    var link = row.querySelector(".msg-link");
    if (link) link.focus();
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function postTo(url) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    form.appendChild(token);
    document.body.appendChild(form);
    form.submit();
  }

  function openHelp() {
    if (help && typeof help.showModal === "function" && !help.open) help.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    if (help && help.open) return;
    var list = rows();
    var reader = document.querySelector("[data-reader]");
    var key = event.key;
    if (key === "?") {
      event.preventDefault();
      openHelp();
    } else if (key === "j" || key === "k") {
      if (!list.length) return;
      event.preventDefault();
      var index = currentIndex(list);
      focusRow(list, index < 0 ? 0 : index + (key === "j" ? 1 : -1));
    } else if (key === "x") {
      var i = currentIndex(list);
      if (i >= 0) {
        var box = list[i].querySelector("input[type=checkbox]");
        if (box) { box.checked = !box.checked; event.preventDefault(); }
      }
    } else if (key === "c") {
      var compose = document.querySelector("[data-shortcut=c]");
      if (compose) { event.preventDefault(); window.location.href = compose.href; }
    } else if (key === "/") {
      var search = document.querySelector("[data-shortcut='/']");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (key === "r") {
      var replyUrl = reader ? reader.getAttribute("data-reply-url") : null;
      var j = currentIndex(list);
      if (!replyUrl && j >= 0) replyUrl = list[j].getAttribute("data-reply-url");
      if (replyUrl) { event.preventDefault(); window.location.href = replyUrl; }
    } else if (key === "#") {
      var deleteForm = reader ? reader.querySelector("[data-delete-form]") : null;
      if (deleteForm) { event.preventDefault(); deleteForm.submit(); return; }
      var n = currentIndex(list);
      if (n >= 0 && list[n].getAttribute("data-delete-url")) {
        event.preventDefault();
        postTo(list[n].getAttribute("data-delete-url"));
      }
    }
  });

  document.querySelectorAll("[data-help-open]").forEach(function (button) {
    button.addEventListener("click", openHelp);
  });

  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var form = box.closest("form");
      form.querySelectorAll("input[name=ids]").forEach(function (item) { item.checked = box.checked; });
    });
  });

  // Destructive forms ask first; the server does not depend on it.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  // A sent message's delivery section refreshes itself while receipts are awaited: often at
  // first (acceptance takes seconds), then less and less (a recipient may wait for hours).
  var deliveries = document.querySelector("[data-poll-url]");
  if (deliveries && window.fetch) {
    var pollUrl = deliveries.getAttribute("data-poll-url");
    var delay = 2000;
    var until = Date.now() + 30 * 60 * 1000;
    var state = deliveries.getAttribute("data-poll-state");
    var schedule = function () {
      if (Date.now() > until) return;
      setTimeout(poll, delay);
      delay = Math.min(Math.round(delay * 1.5), 60000);
    };
    var poll = function () {
      if (document.hidden) {
        document.addEventListener("visibilitychange", function visible() {
          document.removeEventListener("visibilitychange", visible);
          delay = 2000;
          poll();
        });
        return;
      }
      fetch(pollUrl, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        var more = response.headers.get("X-Poll") === "continue";
        var now = response.headers.get("X-Delivery-State");
        if (now === null) throw new Error("not the delivery section (signed out?)");
        return response.text().then(function (html) {
          if (now !== state) {  // replaced only when something changed: the section is a live region
            var receipts = deliveries.querySelector("details.receipts");
            var open = receipts ? receipts.open : true;
            deliveries.innerHTML = html;
            state = now;
            var fresh = deliveries.querySelector("details.receipts");
            if (fresh) fresh.open = open;
          }
          if (more) schedule();
          else deliveries.removeAttribute("data-poll-url");
        });
      }).catch(schedule);  // offline or a server hiccup: try again later
    };
    schedule();
  }
})();
