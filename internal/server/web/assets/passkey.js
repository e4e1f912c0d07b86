// Gatehouse passkeys for the hosted pages: "Sign in with a passkey" on
// /login and "Add a passkey" on /account. Loaded from this origin with
// `defer` (the pages' CSP allows no inline script). Each button sits in a
// form that, without this script, asks the server for a page explaining
// that passkeys need JavaScript.
//
// Protocol (see docs/hosted-pages.md): POST /v1/passkeys/{login,register}/begin
// answers {"publicKey": <WebAuthn JSON options>, ...}; every other top-level
// string of that answer goes back as a query parameter of the matching
// /finish call, whose body is credential.toJSON(). Requests are same-origin
// fetches with a JSON body: the browser adds Sec-Fetch-Site and Origin,
// which the server's CSRF check requires, and sends the session cookie.
(function () {
  "use strict";

  var supported = typeof window.PublicKeyCredential === "function" &&
    !!navigator.credentials && typeof navigator.credentials.get === "function";

  // --- base64url <-> ArrayBuffer, for browsers without the JSON helpers ---
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBuf(c.id) });
    });
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64urlToBuf(json.user.id) });
    if (json.excludeCredentials) o.excludeCredentials = withIds(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuf(json.challenge);
    if (json.allowCredentials) o.allowCredentials = withIds(json.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    var r = cred.response, out = {
      id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return out;
  }

  // --- talking to the server ---
  function ServerError(status, body) {
    this.status = status;
    this.detail = body && typeof body.detail === "string" ? body.detail : "";
    this.code = body && typeof body.code === "string" ? body.code : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = {};
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {}; }
        if (!res.ok) throw new ServerError(res.status, data);
        return data;
      });
    });
  }

  // ceremony runs begin → the browser's passkey prompt → finish.
  // kind "2fa" is the passkey second step of /login/2fa: the challenge
  // travels in the gatehouse_mfa cookie the browser sends by itself.
  function base(kind) {
    return kind === "2fa" ? "/v1/mfa/passkey/" : "/v1/passkeys/" + kind + "/";
  }

  function ceremony(kind) {
    return post(base(kind) + "begin", {}).then(function (begin) {
      if (!begin || typeof begin.publicKey !== "object") throw new ServerError(500, {});
      var extra = new URLSearchParams();
      Object.keys(begin).forEach(function (k) {
        if (k !== "publicKey" && typeof begin[k] === "string") extra.set(k, begin[k]);
      });
      var prompt = kind !== "register"
        ? navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) })
        : navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
      return prompt.then(function (cred) {
        if (!cred) throw new DOMException("no credential", "NotAllowedError");
        var q = extra.toString();
        return post(base(kind) + "finish" + (q ? "?" + q : ""), credentialJSON(cred));
      });
    });
  }

  // --- messages next to the button, announced by an aria-live region ---
  function say(region, text, kind) {
    if (!region) return;
    region.textContent = "";
    if (!text) return;
    var p = document.createElement("p");
    p.className = "msg " + (kind === "error" ? "error" : "notice");
    p.textContent = text;
    region.appendChild(p);
  }

  function explain(err, kind) {
    if (err instanceof ServerError) {
      if (err.status === 429) return "Too many attempts. Wait a minute and try again.";
      if (kind !== "register" && (err.status === 400 || err.status === 401 || err.status === 404)) {
        return "That passkey was not accepted. Try another one, or sign in with your password.";
      }
      if (kind === "register" && err.status === 401) return "Your session has ended. Sign in again, then add the passkey.";
      if (kind === "register" && err.detail && err.status < 500) return err.detail;
      return "Something went wrong. Try again in a moment.";
    }
    switch (err && err.name) {
      case "NotAllowedError":
      case "AbortError":
        return "The passkey prompt was closed or timed out. Try again when you are ready.";
      case "InvalidStateError":
        return "This device already holds a passkey for your account.";
      case "SecurityError":
        return "Passkeys do not work on this address. Open the page at its public URL.";
      case "NotSupportedError":
        return "This browser or device cannot use passkeys.";
    }
    return "Something went wrong. Try again in a moment.";
  }

  function wire(form, kind) {
    var region = form.nextElementSibling && form.nextElementSibling.classList.contains("passkey-msg")
      ? form.nextElementSibling : null;
    if (!supported) {
      form.hidden = true;
      var alts = form.closest(".alternatives");
      if (alts && !alts.querySelector(":scope > :not([hidden]):not(.passkey-msg)")) {
        alts.hidden = true;
        var divider = alts.previousElementSibling;
        if (divider && divider.classList.contains("divider")) divider.hidden = true;
      }
      return;
    }
    var button = form.querySelector("button");
    var busy = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (busy) return;
      busy = true;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      say(region, kind !== "register" ? "Follow your browser's prompt to choose a passkey…" : "Follow your browser's prompt to create a passkey…");
      ceremony(kind).then(function () {
        if (kind !== "register") {
          say(region, "Signed in. One moment…");
          window.location.assign(form.getAttribute("data-return-to") || "/account");
        } else {
          window.location.assign("/account?done=passkey-added#passkeys");
        }
      }).catch(function (err) {
        if (kind === "register" && err instanceof ServerError && err.code === "step_up_required") {
          // Adding a passkey needs a recent sign-in: the account page asks
          // the user to confirm it is them, then they try again.
          window.location.assign("/account?step-up=1#two-factor");
          return;
        }
        say(region, explain(err, kind), "error");
        busy = false;
        button.disabled = false;
        button.removeAttribute("aria-busy");
        button.focus();
      });
    });
  }

  function init() {
    document.querySelectorAll("form.passkey-login").forEach(function (f) { wire(f, "login"); });
    document.querySelectorAll("form.passkey-add").forEach(function (f) { wire(f, "register"); });
    document.querySelectorAll("form.passkey-2fa").forEach(function (f) { wire(f, "2fa"); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
