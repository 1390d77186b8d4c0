// The web chat, streaming: a question goes to /v1/chat/completions with the session's CSRF token and its
// answer appears as it is generated; once it ends, the server's own rendering of it (escaped, code
// coloured, the bill under it) replaces the streamed text. Everything the model says is set as text,
// never as HTML. Without this file every form still works: it posts and waits for the whole answer.
(function () {
  "use strict";
  var chat = document.getElementById("chat");
  var form = document.getElementById("ask");
  if (!chat || !form || !window.fetch || !window.TextDecoder || !window.ReadableStream) return;
  var csrf = form.elements.csrf.value;
  var thread = document.getElementById("thread");
  var MAX_SIDE = 1600; // larger images are scaled down here, before they are sent (the server does too)

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  // --- the units of the bills: J or W, remembered by the session ----------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("form.units button"), function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      chat.dataset.units = button.value;
      Array.prototype.forEach.call(button.form.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      var data = new FormData(button.form);
      data.set("units", button.value);
      fetch(button.form.action, { method: "POST", body: data, credentials: "same-origin", redirect: "manual" });
    });
  });

  // --- reading a stream of server-sent events --------------------------------------------------------
  function readEvents(response, onEvent, onStatus) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (step) {
        buffer += decoder.decode(step.value || new Uint8Array(), { stream: !step.done });
        var blocks = buffer.split("\n\n");
        buffer = step.done ? "" : blocks.pop();
        blocks.forEach(function (block) {
          block.split("\n").forEach(function (line) {
            if (line.indexOf(": status ") === 0 && onStatus) onStatus(line.slice(9)); // where it stands
            if (line.indexOf("data: ") !== 0) return; // ": waiting in the queue" and the like
            var data = line.slice(6);
            if (data !== "[DONE]") onEvent(JSON.parse(data));
          });
        });
        return step.done ? undefined : pump();
      });
    }
    return pump();
  }

  function apiError(response) {
    return response.json().then(
      function (body) { throw new Error(body.error ? body.error.message : response.statusText); },
      function () { throw new Error("the server answered " + response.status); }
    );
  }

  // --- one answer, streaming into its turn -----------------------------------------------------------
  function liveTurn(model, prompt) {
    var root = el("article", "turn live");
    root.setAttribute("aria-busy", "true");
    var said = el("div", "prompt");
    said.appendChild(el("span", "who", "You"));
    said.appendChild(el("div", "said", prompt));
    var answer = el("div", "answer");
    answer.appendChild(el("span", "who", model));
    var text = el("div", "text streaming");
    text.setAttribute("aria-live", "polite");
    answer.appendChild(text);
    var status = el("p", "status note", "Sending…");
    status.setAttribute("role", "status");
    var cancel = el("button", "cancel", "Cancel");
    cancel.type = "button";
    cancel.hidden = true;
    root.appendChild(said);
    root.appendChild(answer);
    root.appendChild(status);
    root.appendChild(cancel);
    var view = { root: root, text: text, status: status, cancel: cancel, id: null };
    cancel.addEventListener("click", function () { cancelAnswer(view); });
    return view;
  }

  function cancelAnswer(view) {
    if (!view.id) return;
    view.cancel.disabled = true;
    fetch("/v1/chat/completions/" + encodeURIComponent(view.id) + "/cancel", {
      method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf }
    }).then(function (r) { return r.ok ? r.json() : apiError(r); })
      .then(function (said) { view.status.textContent = said.message; })
      .catch(function (error) { view.status.textContent = error.message; view.cancel.disabled = false; });
  }

  function stream(body, view) {
    var started = performance.now();
    return fetch("/v1/chat/completions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) return apiError(response);
      view.status.textContent = "Waiting in the queue…";
      var outcome = {};
      return readEvents(response, function (event) {
        if (event.error) { outcome.error = event.error.message; return; }
        if (event.id && !view.id) { view.id = event.id; view.cancel.hidden = false; }
        if (event.usage) outcome.bill = event;
        var choice = event.choices && event.choices[0];
        var piece = choice && choice.delta && choice.delta.content;
        if (!piece) return;
        if (!view.root.dataset.ttftMs) { // the page's time to first token, from its request
          view.root.dataset.ttftMs = String(Math.round(performance.now() - started));
          view.status.textContent = "Generating…";
          view.cancel.hidden = true;
        }
        view.text.textContent += piece;
      }, function (status) {
        if (!view.root.dataset.ttftMs) view.status.textContent = status; // "⏳ queued — position 2", …
      }).then(function () { return outcome; });
    });
  }

  function fragment(url, selector) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.text();
    }).then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html; // our own server's rendering: the model's words in it are escaped there
      return holder.querySelector(selector || "article, section");
    });
  }

  // The list of conversations on the side and today's budget use, from the server once an answer is stored
  // (a new conversation, a turn, a branch), the current one marked; if it cannot be read, it stays as it was.
  function refreshConversations() {
    var list = document.getElementById("conversations");
    if (!list) return Promise.resolve();
    var current = form.elements.parent_id.value;
    var url = "/chat/conversations" + (current ? "?after=" + encodeURIComponent(current) : "");
    return fragment(url, "#conversations").then(function (node) {
      if (node) list.replaceWith(node);
    }, function () {});
  }

  function fail(view, message) {
    view.root.removeAttribute("aria-busy");
    view.root.classList.add("failed");
    view.cancel.hidden = true;
    view.status.textContent = "⚠️ " + message;
  }

  // The answer ended: the server's rendering with its bill, or (history has not stored it yet) the footer.
  function settle(view, outcome) {
    view.root.removeAttribute("aria-busy");
    view.cancel.hidden = true;
    if (outcome.error) { fail(view, outcome.error); return Promise.resolve(null); }
    var extra = outcome.bill && outcome.bill.joulebot;
    if (!extra) { fail(view, "the answer ended without its bill"); return Promise.resolve(null); }
    if (extra.exchange_id == null) {
      view.status.textContent = extra.footer;
      view.status.classList.add("footer");
      return Promise.resolve(null);
    }
    return fragment("/chat/turn/" + extra.exchange_id).then(function (node) {
      node.dataset.ttftMs = view.root.dataset.ttftMs || "";
      view.root.replaceWith(node);
      return extra.exchange_id;
    }, function () {
      view.status.textContent = extra.footer;
      return extra.exchange_id;
    });
  }

  // joulebot's extension of the body: the answer a question continues, the answer whose images it asks with
  function extension(parent, imagesOf) {
    var own = {};
    if (parent) own.parent_id = parent;
    if (imagesOf) own.images_of = imagesOf;
    return own;
  }

  function body(model, prompt, own, urls) {
    var content = [{ type: "text", text: prompt }].concat(urls.map(function (url) {
      return { type: "image_url", image_url: { url: url } };
    }));
    var asked = {
      model: model, messages: [{ role: "user", content: content }],
      stream: true, stream_options: { include_usage: true }
    };
    if (Object.keys(own).length) asked.joulebot = own;
    return asked;
  }

  function continueFrom(id) {
    form.elements.parent_id.value = String(id);
    var where = form.querySelector(".where");
    if (where) where.textContent = "Continues from answer #" + id + ".";
    history.replaceState(null, "", "/chat?after=" + id);
  }

  function single(model, prompt, own, urls, fromForm) {
    var view = liveTurn(model, prompt);
    thread.appendChild(view.root);
    view.root.scrollIntoView({ block: "nearest" });
    return stream(body(model, prompt, own, urls), view).then(function (outcome) {
      return settle(view, outcome).then(function (id) {
        if (id && fromForm) continueFrom(id);
        if (id) return refreshConversations();
      });
    }, function (error) {
      fail(view, error.message);
      if (fromForm && !form.elements.prompt.value) form.elements.prompt.value = prompt; // refused: nothing queued
    });
  }

  function compare(models, prompt, urls, imagesOf) {
    var block = el("section", "pair live");
    block.setAttribute("aria-label", "Two models, one question");
    var columns = el("div", "columns");
    block.appendChild(columns);
    var views = models.map(function (model) {
      var view = liveTurn(model, prompt);
      var column = el("div", "column");
      column.appendChild(view.root);
      columns.appendChild(column);
      return view;
    });
    thread.appendChild(block);
    block.scrollIntoView({ block: "nearest" });
    return Promise.all(views.map(function (view, i) {
      return stream(body(models[i], prompt, extension(null, imagesOf), urls), view).catch(function (error) {
        return { error: error.message };
      });
    })).then(function (outcomes) {
      var ids = outcomes.map(function (o) { return o.bill && o.bill.joulebot ? o.bill.joulebot.exchange_id : null; });
      if (ids[0] == null || ids[1] == null) return Promise.all(outcomes.map(function (o, i) { return settle(views[i], o); }));
      return fragment("/chat/pair/" + ids[0] + "/" + ids[1]).then(function (node) {
        Array.prototype.forEach.call(node.querySelectorAll("article.turn"), function (turn, i) {
          turn.dataset.ttftMs = views[i].root.dataset.ttftMs || "";
        });
        block.replaceWith(node);
      });
    }).then(refreshConversations);
  }

  // --- images: dropped or chosen, shown, sent as data: URLs -------------------------------------------
  var input = document.getElementById("images");
  var drop = document.getElementById("drop");
  var previews = document.getElementById("previews");

  function readAsUrl(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(new Error("cannot read " + file.name)); };
      reader.readAsDataURL(file);
    });
  }

  function shrunk(file) {
    if (file.type === "image/gif" || !window.createImageBitmap) return readAsUrl(file);
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      if (scale === 1 && file.size < 700000) return readAsUrl(file);
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return canvas.toDataURL("image/jpeg", 0.85);
    }, function () { return readAsUrl(file); }); // not decodable here: the server says why
  }

  function sees(select) {
    var option = select && select.options[select.selectedIndex];
    return !option || !option.value || option.dataset.vision === "true";
  }

  function showPreviews() {
    previews.textContent = "";
    var files = Array.prototype.slice.call(input.files);
    files.forEach(function (file) {
      readAsUrl(file).then(function (url) {
        var img = el("img");
        img.src = url;
        img.alt = file.name;
        previews.appendChild(img);
      });
    });
    if (files.length && !(sees(form.elements.model) && sees(form.elements.compare_with))) {
      previews.appendChild(el("p", "note", "The model chosen does not see images: pick one marked “sees images”."));
    }
  }

  if (input && drop && previews) {
    ["dragenter", "dragover"].forEach(function (name) {
      drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      drop.addEventListener(name, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      var all = new DataTransfer();
      Array.prototype.slice.call(input.files).concat(Array.prototype.slice.call(event.dataTransfer.files))
        .filter(function (file) { return file.type.indexOf("image/") === 0; })
        .forEach(function (file) { all.items.add(file); });
      input.files = all.files;
      showPreviews();
    });
    input.addEventListener("change", showPreviews);
    form.elements.model.addEventListener("change", showPreviews);
  }

  // --- sending: the question box, and every Retry ---------------------------------------------------
  function send(asking) {
    var fields = asking.elements;
    var prompt = fields.prompt.value;
    if (!prompt.trim()) return;
    var parent = fields.parent_id.value ? Number(fields.parent_id.value) : null;
    var imagesOf = fields.images_of ? Number(fields.images_of.value) : null; // a Retry: the answer's images again
    var other = fields.compare_with ? fields.compare_with.value : "";
    var files = fields.images ? Array.prototype.slice.call(fields.images.files) : [];
    var fromForm = asking === form;
    var button = asking.querySelector("button[type=submit]");
    button.disabled = true;
    Promise.all(files.map(shrunk)).then(function (urls) {
      if (fromForm) {
        fields.prompt.value = "";
        if (fields.images) fields.images.value = "";
        if (previews) previews.textContent = "";
      }
      if (other) return compare([fields.model.value, other], prompt, urls, imagesOf);
      return single(fields.model.value, prompt, extension(parent, imagesOf), urls, fromForm);
    }).catch(function (error) {
      var view = liveTurn(fields.model.value, prompt);
      thread.appendChild(view.root);
      fail(view, error.message);
    }).then(function () {
      button.disabled = false;
      if (fromForm) fields.prompt.focus();
    });
  }

  document.addEventListener("submit", function (event) {
    var asking = event.target;
    if (!asking.classList || !asking.classList.contains("asks")) return;
    event.preventDefault();
    send(asking);
  });

  form.elements.prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
