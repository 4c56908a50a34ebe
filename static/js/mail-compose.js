// Compose: rich-text editor (Quill when vendored), address checks, uploads with progress,
// drag & drop, size limit, autosave every 30 s. Everything degrades to the plain form.
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  if (!form) return;

  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var bodyHtml = document.getElementById("id_body_html");
  var bodyText = document.getElementById("id_body_text");
  var editorEl = document.getElementById("editor");
  var fileInput = document.getElementById("id_attach");
  var list = form.querySelector("[data-attachment-list]");
  var progressBox = form.querySelector("[data-upload-progress]");
  var sizeCurrent = form.querySelector("[data-size-current]");
  var sizeStatus = form.querySelector("[data-size-status]");
  var sendButton = form.querySelector("[data-send]");
  var autosaveStatus = form.querySelector("[data-autosave-status]");
  var maxTotal = parseInt(form.getAttribute("data-max-total-size"), 10) || 0;
  var forwardSize = parseInt(form.getAttribute("data-forward-size"), 10) || 0;
  var quill = null;
  var dirty = false;
  var uploading = 0;
  var saving = null;
  var ADDRESS = /^[^\s@<>(),;:"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

  // --- Rich text ---------------------------------------------------------------------
  function format() {
    var checked = form.querySelector("input[name=body_format]:checked");
    return checked ? checked.value : "text";
  }

  // Quill's CSS names the font and size choices in English (`content:` strings). Each choice
  // gets a data-label in the page's language instead, which quill.snow.css shows first and
  // Quill copies onto the picker's label; the template renders the translated words.
  function labelPickers() {
    ["font", "size"].forEach(function (kind) {
      var picker = form.querySelector(".ql-toolbar .ql-picker.ql-" + kind);
      if (!picker) return;
      var pickerLabel = picker.querySelector(".ql-picker-label");
      picker.querySelectorAll(".ql-picker-item").forEach(function (item) {
        var text = editorEl.getAttribute("data-label-" + kind + "-" + (item.getAttribute("data-value") || "default"));
        if (!text) return;
        item.setAttribute("data-label", text);
        item.setAttribute("aria-label", text);
        if (item.classList.contains("ql-selected") && pickerLabel) pickerLabel.setAttribute("data-label", text);
      });
    });
  }

  function setupQuill() {
    if (!window.Quill || !form.getAttribute("data-quill")) return;
    var Quill = window.Quill;
    // Inline styles rather than classes: the recipient's mail client has no Quill stylesheet.
    var Size = Quill.import("attributors/style/size");
    // false is the default (no attribute): the pickers then read "Normal" and "Sans Serif".
    Size.whitelist = ["12px", "20px", "28px"];
    Quill.register(Size, true);
    var Font = Quill.import("attributors/style/font");
    Font.whitelist = ["serif", "monospace"];
    Quill.register(Font, true);
    editorEl.hidden = false;
    quill = new Quill(editorEl, {
      theme: "snow",
      modules: {
        toolbar: [
          [{ font: [false].concat(Font.whitelist) }, { size: ["12px", false, "20px", "28px"] }],
          ["bold", "italic", "underline"],
          [{ list: "ordered" }, { list: "bullet" }],
          ["link", "clean"]
        ]
      }
    });
    labelPickers();
    // Quill's link tooltip has an unlabelled text input; name it in the page's language.
    var linkInput = editorEl.querySelector(".ql-tooltip input[data-link]");
    if (linkInput) linkInput.setAttribute("aria-label", editorEl.getAttribute("data-label-link") || "");
    quill.root.setAttribute("aria-label", document.getElementById("body-label").textContent);
    quill.root.setAttribute("role", "textbox");
    quill.root.setAttribute("aria-multiline", "true");
    if (bodyHtml.value) {
      quill.clipboard.dangerouslyPasteHTML(bodyHtml.value, "silent");
    } else if (bodyText.value) {
      quill.setText(bodyText.value, "silent");
    }
    quill.on("text-change", function () { dirty = true; });
    applyFormat();
    form.querySelectorAll("input[name=body_format]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        if (format() === "text") {
          bodyText.value = quill.getText().replace(/\n$/, "");
        } else {
          quill.setText(bodyText.value, "silent");
        }
        applyFormat();
        dirty = true;
      });
    });
  }

  function applyFormat() {
    var html = quill !== null && format() === "html";
    var container = editorEl.parentNode.querySelector(".ql-toolbar");
    editorEl.hidden = !html;
    if (container) container.hidden = !html;
    bodyText.hidden = html;
    document.getElementById("body-label").setAttribute("for", html ? "" : "id_body_text");
  }

  function syncBody() {
    if (quill === null) return;
    if (format() === "html") {
      var empty = quill.getLength() <= 1;
      bodyHtml.value = empty ? "" : quill.getSemanticHTML();
      bodyText.value = quill.getText().replace(/\n$/, "");
    } else {
      bodyHtml.value = "";
    }
  }

  // --- Addresses ----------------------------------------------------------------------
  function addresses(value) {
    return value.split(/[,;\n]/).map(function (chunk) {
      var trimmed = chunk.trim();
      var angle = trimmed.match(/<([^<>]*)>\s*$/);
      return angle ? angle[1].trim() : trimmed;
    }).filter(function (a) { return a.length > 0; });
  }

  function checkAddresses(input) {
    var status = input.parentNode.querySelector("[data-address-status]");
    var found = addresses(input.value);
    var bad = found.filter(function (a) { return !ADDRESS.test(a); });
    // The last address may still be being typed: judge it only once the field is left.
    if (document.activeElement === input && bad.length && bad[bad.length - 1] === found[found.length - 1] && !/[,;]\s*$/.test(input.value)) {
      bad = bad.slice(0, -1);
    }
    input.setAttribute("aria-invalid", bad.length ? "true" : "false");
    if (status) {
      status.classList.toggle("error-text", bad.length > 0);
      status.textContent = bad.length
        ? (status.getAttribute("data-invalid-label") || "Not a valid address") + ": " + bad.join(", ")
        : (found.length ? found.length + " ✓" : "");
    }
    updateSize();
  }

  function recipients() {
    var all = {};
    form.querySelectorAll("[data-addresses]").forEach(function (input) {
      addresses(input.value).forEach(function (a) { if (ADDRESS.test(a)) all[a.toLowerCase()] = true; });
    });
    return Object.keys(all).length;
  }

  var suggestTimer = null;
  function suggest(input) {
    var url = form.getAttribute("data-autocomplete-url");
    if (!url) return;
    var parts = input.value.split(/,/);
    var last = parts.pop().trim();
    if (last.length < 2) return;
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(function () {
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(last), {
        headers: { "Accept": "application/json" }, credentials: "same-origin"
      }).then(function (r) { return r.ok ? r.json() : []; }).then(function (data) {
        var items = Array.isArray(data) ? data : (data.results || data.contacts || []);
        var datalist = document.getElementById("address-suggestions");
        datalist.textContent = "";
        var prefix = parts.length ? parts.join(",").trim() + ", " : "";
        items.slice(0, 10).forEach(function (item) {
          // Contacts give "value" ready to insert: "Name" <address>, or a group's addresses.
          var value = typeof item === "string" ? item : (item.value || item.address || item.email || "");
          if (!value) return;
          var option = document.createElement("option");
          option.value = prefix + value;
          if (item.name) option.label = item.name + (item.address ? " <" + item.address + ">" : "");
          datalist.appendChild(option);
        });
      }).catch(function () { /* suggestions are optional */ });
    }, 200);
  }

  form.querySelectorAll("[data-addresses]").forEach(function (input) {
    input.addEventListener("input", function () { dirty = true; checkAddresses(input); suggest(input); });
    input.addEventListener("blur", function () { checkAddresses(input); });
  });

  // --- Size limit ---------------------------------------------------------------------
  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function attachmentsSize() {
    var total = forwardSize;
    list.querySelectorAll("li[data-size]").forEach(function (li) { total += parseInt(li.getAttribute("data-size"), 10) || 0; });
    return total;
  }

  function updateSize() {
    if (!sizeCurrent) return;
    var size = Math.ceil(attachmentsSize() * 4 / 3) + (bodyText.value || "").length;
    var n = Math.max(1, recipients());
    var total = size * n;
    sizeCurrent.textContent = formatSize(size) + " × " + n + " = " + formatSize(total);
    var over = maxTotal > 0 && total > maxTotal;
    sizeStatus.classList.toggle("error-text", over);
    updateSend(over);
  }

  function updateSend(over) {
    if (over === undefined) over = sizeStatus.classList.contains("error-text");
    sendButton.disabled = uploading > 0 || over;
  }

  // --- Drafts and autosave -------------------------------------------------------------
  function draftData() {
    syncBody();
    var data = new FormData(form);
    data.delete("attach");
    data.set("action", "save");
    return data;
  }

  function applyDraft(json) {
    if (!json || !json.draft) return;
    form.setAttribute("action", json.url);
    form.setAttribute("data-attachments-url", json.attachments_url);
    if (window.history && window.location.pathname !== json.url) window.history.replaceState(null, "", json.url);
    if (json.attachments) renderAttachments(json.attachments);
  }

  function save() {
    if (saving) return saving;
    var wasDirty = dirty;
    dirty = false;
    if (autosaveStatus) autosaveStatus.textContent = autosaveStatus.getAttribute("data-saving-label") || "Saving…";
    saving = fetch(form.getAttribute("action"), {
      method: "POST",
      body: draftData(),
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (json) {
        applyDraft(json);
        if (autosaveStatus && json.saved) autosaveStatus.textContent = (autosaveStatus.getAttribute("data-saved-label") || "Saved") + " " + json.saved;
        return json;
      });
    }).catch(function (error) {
      dirty = dirty || wasDirty;
      throw error;
    }).finally(function () { saving = null; });
    return saving;
  }

  function ensureDraft() {
    var url = form.getAttribute("data-attachments-url");
    if (url) return Promise.resolve(url);
    return save().then(function () { return form.getAttribute("data-attachments-url"); });
  }

  form.addEventListener("input", function () { dirty = true; updateSize(); });
  form.addEventListener("change", function () { dirty = true; });
  var seconds = parseInt(form.getAttribute("data-autosave"), 10) || 30;
  setInterval(function () { if (dirty && uploading === 0) save().catch(function () {}); }, seconds * 1000);

  // --- Attachments ---------------------------------------------------------------------
  function renderAttachments(items) {
    list.querySelectorAll("li[data-size]").forEach(function (li) { li.remove(); });
    var forwarded = list.querySelector("li.forwarded");
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.setAttribute("data-size", String(item.size));
      li.appendChild(document.createTextNode(item.filename + " "));
      var small = document.createElement("small");
      small.textContent = formatSize(item.size);
      li.appendChild(small);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link-button";
      remove.textContent = list.getAttribute("data-remove-label") || "Remove";
      remove.setAttribute("aria-label", remove.textContent + " " + item.filename);
      remove.addEventListener("click", function () { removeAttachment(item.remove_url); });
      li.appendChild(document.createTextNode(" "));
      li.appendChild(remove);
      list.insertBefore(li, forwarded);
    });
    updateSize();
  }

  function removeAttachment(url) {
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
    }).then(function (r) { return r.json(); }).then(function (json) { renderAttachments(json.attachments || []); });
  }

  list.querySelectorAll("button[formaction]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      removeAttachment(button.getAttribute("formaction"));
    });
  });

  function upload(files) {
    if (!files || !files.length) return;
    var batch = Array.prototype.slice.call(files);
    uploading += 1;
    updateSend();
    var row = document.createElement("div");
    var label = document.createElement("span");
    label.textContent = batch.map(function (f) { return f.name; }).join(", ") + " ";
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    row.appendChild(label);
    row.appendChild(bar);
    progressBox.appendChild(row);
    function done() {
      uploading -= 1;
      row.remove();
      updateSend();
    }
    ensureDraft().then(function (url) {
      var data = new FormData();
      batch.forEach(function (file) { data.append("attach", file, file.name); });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) bar.value = Math.round(event.loaded * 100 / event.total);
      });
      xhr.addEventListener("load", function () {
        try {
          var json = JSON.parse(xhr.responseText);
          if (xhr.status < 300) renderAttachments(json.attachments || []);
          else label.textContent = json.error || xhr.statusText;
        } catch (e) { /* keep the form usable */ }
        done();
      });
      xhr.addEventListener("error", done);
      xhr.send(data);
    }).catch(done);
  }

  if (fileInput) {
    fileInput.addEventListener("change", function () {
      upload(fileInput.files);
      // Uploaded already: the form itself must not send the files a second time.
      fileInput.value = "";
    });
  }
  var zone = form.querySelector("[data-dropzone]");
  if (zone) {
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer) upload(event.dataTransfer.files);
    });
  }

  form.addEventListener("submit", function (event) {
    syncBody();
    if (uploading > 0) event.preventDefault();
    dirty = false;
  });

  setupQuill();
  form.querySelectorAll("[data-addresses]").forEach(checkAddresses);
  updateSize();
})();
