// The UI's Content-Security-Policy, one source for the three places that state it: the <meta> tag of the
// built index.html (the only one Chromium applies to Electron's file:// page), Electron's response header
// (the dev server) and browser mode's response header. Everything the UI loads is its own bundle; images
// arrive as data: URLs inside API answers; it connects only back to its own origin ('self' covers ws: to the
// same host and port in CSP 3).

const DIRECTIVES: readonly string[] = [
  "default-src 'none'",
  "script-src 'self'",
  // Svelte sets style attributes (style: directives, static templates): no script runs from them.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'"
];

/** The policy for the <meta> tag (frame-ancestors is ignored, with a console warning, in a meta tag). */
export const UI_CSP_META = DIRECTIVES.join('; ');

/** The policy sent as a response header: the same, and no page may frame the UI. */
export const UI_CSP_HEADER = [...DIRECTIVES, "frame-ancestors 'none'"].join('; ');
