(function () {
  "use strict";
  var login = document.getElementById("lti-storage-login");
  var launch = document.getElementById("lti-storage-launch");
  var config = login || launch;
  if (!config) return;
  var d = config.dataset;
  var parentWindow = window.parent && window.parent !== window ? window.parent : null;
  var pending = {};

  function messageId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // Answers count only from the window asked, from the origin asked, for the
  // message_id and subject asked; everything else is ignored.
  window.addEventListener("message", function (event) {
    var m = event.data;
    if (!m || typeof m !== "object" || typeof m.message_id !== "string") return;
    var wait = Object.prototype.hasOwnProperty.call(pending, m.message_id) ? pending[m.message_id] : null;
    if (!wait) return;
    if (event.source !== wait.target) return;
    if (wait.origin !== "*" && event.origin !== wait.origin) return;
    if (m.subject !== wait.subject + ".response") return;
    delete pending[m.message_id];
    window.clearTimeout(wait.timer);
    wait.done(m);
  });

  function ask(target, origin, message, timeout) {
    return new Promise(function (done) {
      if (!target) {
        done(null);
        return;
      }
      var id = messageId();
      message.message_id = id;
      pending[id] = {
        target: target,
        origin: origin,
        subject: message.subject,
        done: done,
        timer: window.setTimeout(function () {
          delete pending[id];
          done(null);
        }, timeout),
      };
      try {
        target.postMessage(message, origin);
      } catch (e) {
        window.clearTimeout(pending[id].timer);
        delete pending[id];
        done(null);
      }
    });
  }

  function frame(name) {
    if (!parentWindow) return null;
    if (!name || name === "_parent") return parentWindow;
    try {
      if (parentWindow.frames[name]) return parentWindow.frames[name];
    } catch (e) {
      // fall back to the parent
    }
    return parentWindow;
  }

  if (login) {
    var went = false;
    var go = function () {
      if (went) return;
      went = true;
      window.location.replace(d.next);
    };
    if (!parentWindow) {
      go();
      return;
    }
    // lti.capabilities carries no data: the only message sent to any origin.
    ask(parentWindow, "*", { subject: "lti.capabilities" }, 1000)
      .then(function (answer) {
        var put = null;
        if (answer && Array.isArray(answer.supported_messages)) {
          answer.supported_messages.forEach(function (s) {
            if (s && s.subject === "lti.put_data") put = s;
          });
          if (!put) return null; // the platform says it has no storage
        }
        var target = frame(put && typeof put.frame === "string" ? put.frame : d.target);
        return Promise.all([
          ask(target, d.origin, { subject: "lti.put_data", key: d.stateKey, value: d.stateValue }, 2000),
          ask(target, d.origin, { subject: "lti.put_data", key: d.nonceKey, value: d.nonceValue }, 2000),
        ]);
      })
      .then(go, go);
  }

  if (launch) {
    var form = document.getElementById("lti-storage-form");
    var submit = function (proof) {
      if (proof) {
        form.elements.lti_storage_proof.value = proof;
        form.elements.lti_storage_failed.disabled = true;
      } else {
        form.elements.lti_storage_proof.disabled = true;
      }
      form.submit();
    };
    ask(frame(d.target), d.origin, { subject: "lti.get_data", key: d.key }, 3000).then(
      function (answer) {
        var value = answer && !answer.error && typeof answer.value === "string" ? answer.value : "";
        var sameKey = answer && (answer.key === undefined || answer.key === d.key);
        var dot = value.indexOf(".");
        // The stored value is "<state>.<proof>": only the posted state's proof is sent.
        var proof = sameKey && dot > 0 && value.slice(0, dot) === d.state ? value.slice(dot + 1) : "";
        submit(proof);
      },
      function () {
        submit("");
      }
    );
  }
})();
