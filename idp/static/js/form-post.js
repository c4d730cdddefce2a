// OAuth 2.0 Form Post Response Mode: submit the authorization response to the agency at once.
// Served from Hawiya's own origin so the page works under a CSP that forbids inline scripts.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("response");
  if (form) { form.submit(); }
});
