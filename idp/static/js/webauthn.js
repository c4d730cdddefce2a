// Passkeys and security keys (WebAuthn) on Hawiya's pages.
//
// The server writes each ceremony's options into the page as a JSON data block (never inline
// script: the CSP forbids it) and a form with a hidden "credential" field. This script asks the
// browser for the credential, puts its JSON into the field and submits the form like any other,
// with the page's CSRF token: no page needs an API. A sign-in form marked data-conditional also
// offers passkeys in the username field's autofill where the browser supports it.
(function () {
  "use strict";

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: toBytes(d.id), transports: d.transports };
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function asJSON(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: response
    };
  }

  function showError(form) {
    var message = form.querySelector("[data-webauthn-error]");
    if (message) { message.hidden = false; }
  }

  function start(form, json, conditional, controller) {
    var ask = form.dataset.webauthn === "create"
      ? navigator.credentials.create({ publicKey: creationOptions(json), signal: controller.signal })
      : navigator.credentials.get({
          publicKey: requestOptions(json),
          mediation: conditional ? "conditional" : "optional",
          signal: controller.signal
        });
    return ask.then(function (credential) {
      if (!credential) { return; }
      form.querySelector("input[name=credential]").value = JSON.stringify(asJSON(credential));
      form.submit();
    }, function (error) {
      // The person closed the dialog, or autofill was set aside for a button press: not a failure.
      if (conditional || (error && error.name === "AbortError")) { return; }
      showError(form);
    });
  }

  function prepare(form) {
    var data = document.getElementById(form.dataset.options);
    if (!data) { return; }
    var json = JSON.parse(data.textContent);
    var controller = new AbortController();
    form.hidden = false;
    var pending = false;
    form.addEventListener("submit", function (event) {
      if (form.querySelector("input[name=credential]").value) { return; }
      event.preventDefault();
      if (pending) { return; }  // one ceremony at a time: a second press would be refused
      pending = true;
      controller.abort();
      controller = new AbortController();
      start(form, json, false, controller).then(function () { pending = false; });
    });
    if (form.dataset.conditional && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) { start(form, json, true, controller); }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    var forms = document.querySelectorAll("form[data-webauthn]");
    for (var i = 0; i < forms.length; i++) { prepare(forms[i]); }
  });
})();
