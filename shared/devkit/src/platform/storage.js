(function () {
  "use strict";
  var config = document.getElementById("platform-messages");
  if (!config) return;
  var mode = config.dataset.mode;
  var frameName = config.dataset.frame;
  var toolOrigins = (config.dataset.toolOrigins || "").split(" ").filter(Boolean);
  // What each tool origin stored: an origin reads back only its own keys.
  var stored = {};

  if (mode === "course") {
    var tool = document.getElementById("tool-frame");
    var storageFrame = document.getElementById("storage-frame");
    var show = function () {
      if (tool && !tool.getAttribute("src")) tool.setAttribute("src", tool.dataset.src);
    };
    if (storageFrame) {
      storageFrame.addEventListener("load", show);
      window.setTimeout(show, 3000); // should its load event have gone unseen
    } else {
      show();
    }
  }

  window.addEventListener("message", function (event) {
    var m = event.data;
    if (!m || typeof m !== "object" || typeof m.subject !== "string" || typeof m.message_id !== "string") return;
    if (toolOrigins.indexOf(event.origin) < 0 || !event.source) return;
    var reply = function (answer) {
      answer.subject = m.subject + ".response";
      answer.message_id = m.message_id;
      event.source.postMessage(answer, event.origin);
    };
    var own = stored[event.origin] || (stored[event.origin] = {});
    if (mode === "course" && m.subject === "lti.capabilities") {
      var supported = [{ subject: "lti.capabilities" }];
      if (config.dataset.storage === "1") {
        supported.push({ subject: "lti.put_data", frame: frameName });
        supported.push({ subject: "lti.get_data", frame: frameName });
      }
      reply({ supported_messages: supported });
    } else if (mode === "storage" && m.subject === "lti.put_data") {
      if (typeof m.key !== "string" || typeof m.value !== "string" || m.key.length > 512 || m.value.length > 4096) {
        reply({ error: { code: "bad_request", message: "key and value must be short strings" } });
        return;
      }
      own[m.key] = m.value;
      reply({ key: m.key, value: m.value });
    } else if (mode === "storage" && m.subject === "lti.get_data") {
      if (typeof m.key === "string" && Object.prototype.hasOwnProperty.call(own, m.key)) {
        reply({ key: m.key, value: own[m.key] });
      } else {
        reply({ key: m.key, error: { code: "bad_request", message: "no value for this key" } });
      }
    } else if (mode === "storage" || m.subject === "lti.capabilities") {
      reply({ error: { code: "unsupported_subject", message: "not supported here" } });
    }
  });
})();
