// Gatehouse's Swagger UI set-up: the document is this server's own, nothing
// is loaded from another host (validatorUrl off), and the Authorize dialog
// logs in with the OAuth2 password grant at /oauth2/token.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
};
