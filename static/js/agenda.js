// The Calendar tab: keyboard moves between periods, all-day/repeat fields follow their controls,
// destructive buttons ask first. Everything works without JS (links, plain forms).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  ready(function () {
    // ← / PageUp: previous period, → / PageDown: next, t: today (not while typing, not with modifiers).
    var nav = {};
    document.querySelectorAll("[data-agenda-nav]").forEach(function (link) {
      nav[link.getAttribute("data-agenda-nav")] = link;
    });
    if (nav.prev || nav.next || nav.today) {
      document.addEventListener("keydown", function (event) {
        if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
        var which = null;
        if (event.key === "ArrowLeft" || event.key === "PageUp") which = "prev";
        else if (event.key === "ArrowRight" || event.key === "PageDown") which = "next";
        else if (event.key === "t" || event.key === "T") which = "today";
        if (!which || !nav[which]) return;
        event.preventDefault();
        window.location.assign(nav[which].href);
      });
    }

    // Time grids open at 07:00 (or the earliest event's hour); the rest of the day is a scroll away.
    document.querySelectorAll("[data-agenda-grid]").forEach(function (grid) {
      var box = grid.querySelector(".agenda-grid__scroll");
      var hour = grid.querySelector(".agenda-grid__hours [data-hour='" + grid.getAttribute("data-first-hour") + "']");
      // offsetTop counts from .agenda-grid__body (position: relative), the top of the scrolled content.
      if (box && hour) box.scrollTop = Math.max(hour.offsetTop, 0);
    });

    // The event form: time fields only for timed events, repeat details only when repeating.
    var allDay = document.getElementById("id_all_day");
    if (allDay) {
      var syncAllDay = function () {
        document.querySelectorAll("[data-agenda-timed]").forEach(function (box) {
          box.hidden = allDay.checked;
        });
      };
      allDay.addEventListener("change", syncAllDay);
      syncAllDay();
    }
    var repeat = document.getElementById("id_repeat");
    var ends = document.getElementById("id_ends");
    if (repeat) {
      var syncRepeat = function () {
        document.querySelectorAll("[data-agenda-repeat]").forEach(function (box) {
          box.hidden = !repeat.value;
        });
        var weekdays = document.getElementById("id_weekdays_field");
        if (weekdays) weekdays.hidden = repeat.value !== "WEEKLY";
        if (ends) {
          var until = document.getElementById("id_until_field");
          var count = document.getElementById("id_count_field");
          if (until) until.hidden = ends.value !== "until";
          if (count) count.hidden = ends.value !== "count";
        }
      };
      repeat.addEventListener("change", syncRepeat);
      if (ends) ends.addEventListener("change", syncRepeat);
      syncRepeat();
    }

    // Moving the start date moves the end date by the same number of days.
    var startDate = document.getElementById("id_start_date");
    var endDate = document.getElementById("id_end_date");
    if (startDate && endDate) {
      var previous = startDate.value;
      startDate.addEventListener("change", function () {
        var from = Date.parse(previous), to = Date.parse(startDate.value), end = Date.parse(endDate.value);
        if (!isNaN(from) && !isNaN(to) && !isNaN(end)) {
          endDate.value = new Date(end + (to - from)).toISOString().slice(0, 10);
        } else if (!isNaN(to) && !endDate.value) {
          endDate.value = startDate.value;
        }
        previous = startDate.value;
      });
    }

    // Destructive buttons confirm first.
    document.querySelectorAll("[data-agenda-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-agenda-confirm"))) event.preventDefault();
      });
    });

    // The subscription address selects itself for copying.
    document.querySelectorAll("input[readonly]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
  });
})();
