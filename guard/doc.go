// Package guard lets a Go service (a "resource server") accept the
// credentials Gatehouse issues, without depending on Gatehouse's server
// code.
//
// # Using it
//
// Make one Guard at start-up and wrap the handlers that need a caller:
//
//	g, err := guard.New(guard.Config{
//		Issuer:           "https://auth.example.com", // Gatehouse's public URL
//		IntrospectionKey: os.Getenv("GATEHOUSE_INTROSPECTION_KEY"),
//	})
//	...
//	mux.Handle("POST /posts", g.Middleware(guard.RequireScopes("write")(createPost)))
//	mux.Handle("DELETE /posts/{id}", g.Middleware(guard.RequireRoles("editor", "admin")(deletePost)))
//	mux.Handle("PATCH /posts/{id}", g.Middleware(guard.Authorize(loadPost,
//		func(p *guard.Principal, post *Post) error { return guard.OwnerOr(p, post.Author, "admin") },
//		patchPost)))
//
// Handlers read the caller with [PrincipalFrom]. [Guard.Check] is the same
// decision without the HTTP plumbing, and [WriteError] writes the answer for
// any error this package returns.
//
// # Step-up: two factors, a recent sign-in
//
// [Principal] tells how and when the user signed in: ACR ([AAL1] or
// [AAL2]), AMR (RFC 8176 methods such as "pwd", "otp", "hwk") and AuthTime,
// from the acr, amr and auth_time claims of an access token or the members
// of the same name in an introspection answer (sessions). API keys carry
// none of them. For sensitive routes:
//
//	twoFactors := guard.RequireAAL2()                  // acr must be aal2
//	recent := guard.RequireFreshAuth(10 * time.Minute) // auth_time at most 10 minutes ago
//	mux.Handle("POST /payouts", g.Middleware(twoFactors(payout)))
//	mux.Handle("PUT /bank-account", g.Middleware(recent(setBankAccount)))
//	mux.Handle("DELETE /account", g.Middleware(twoFactors(recent(deleteAccount)))) // both
//
// A caller that falls short gets 401 (RFC 9470 step-up, not 403) with
//
//	WWW-Authenticate: Bearer realm="gatehouse", error="insufficient_user_authentication",
//	    error_description="…", acr_values="aal2"      (RequireAAL2)
//	    … max_age=600                                 (RequireFreshAuth(10*time.Minute))
//
// and a problem body with "code": "step_up_required". The client then has
// the user step up with Gatehouse (POST /v1/mfa/step-up, which renews the
// session or returns a fresh access token) and retries. An Authorize rule
// can ask for the same by returning a [*StepUpError].
//
// # What it accepts
//
//   - Access tokens (Authorization: Bearer <JWT>) are verified locally,
//     against the public keys Gatehouse publishes at /.well-known/jwks.json:
//     no network round trip per request.
//   - API keys (X-API-Key: gth_… or Authorization: Bearer gth_…) and
//     Gatehouse session cookies are opaque: they are checked by asking
//     Gatehouse (RFC 7662 introspection), which needs Config.IntrospectionKey,
//     an API key with scope introspect. Without it only access tokens work.
//     A session cookie only reaches a service served from the same host as
//     Gatehouse (the cookie has no Domain attribute).
//
// # Security properties
//
//   - The signature algorithm of an access token is pinned to the key its
//     kid names (the JWK's alg and kty), never taken from the token header
//     alone: "none", HS256 signed with a public key, and algorithms outside
//     Config.Algorithms are refused. Keys carried in the token header (jwk,
//     jku, x5c, x5u) are ignored; a crit header is refused.
//   - typ must be at+jwt (RFC 9068); iss, aud, exp, nbf and iat are checked
//     with a clock-skew leeway of at most 5 seconds; sub is required.
//   - The JWKS is fetched on first use, cached, re-read every few minutes,
//     and re-read when a token names an unknown kid — at most once every 10
//     seconds, so a flood of made-up kids cannot turn the guard against
//     Gatehouse.
//   - A verified access token is remembered until it expires (or its key
//     leaves the JWKS), so a token presented again costs a map lookup; a
//     tampered token is a different string and is verified afresh.
//   - Introspection answers are cached for Config.CacheTTL (30 s by
//     default; a revoked API key or session keeps working here for at most
//     that long), refusals for 5 seconds, keyed by a SHA-256 of the
//     credential so that no API key or session id is kept in memory.
//     Concurrent requests with the same credential share one introspection
//     call. The answer must name the kind of credential that was sent: a
//     refresh token sent as a cookie is refused. Both caches are bounded.
//   - It fails closed: when Gatehouse cannot be reached (no JWKS yet,
//     introspection down or refusing the introspection key) the request gets
//     503, never a pass.
//   - A state-changing request authenticated by a session cookie must come
//     from the same origin (Fetch metadata / Origin, as
//     [net/http.CrossOriginProtection] checks) or it gets 403: browsers
//     send cookies with cross-site requests (CSRF). Bearer tokens and API
//     keys are not sent by browsers on their own and are exempt.
//   - Missing credentials get 401 with WWW-Authenticate: Bearer; invalid or
//     expired ones 401 with error="invalid_token" (RFC 6750 §3); present but
//     insufficient 403 naming the missing scope or role; a sign-in too weak
//     or too old for [RequireAAL2] or [RequireFreshAuth] 401 with
//     error="insufficient_user_authentication" (RFC 9470). The reason a
//     credential was refused is in the error [Guard.Check] returns, for
//     logs, never in the response.
//   - After a step-up refusal of a session cookie, the cached
//     introspection answer for it is dropped, so a session that has just
//     stepped up is seen at its new level on the retry, not after
//     Config.CacheTTL.
//   - Redirects are not followed on the way to Gatehouse (a redirect would
//     carry the introspection key and the credential elsewhere), and plain
//     http:// is refused except to loopback addresses unless
//     Config.AllowInsecureHTTP is set.
//
// # Revocations within a second: the revocation feed
//
// An access token is verified locally, so on its own a Guard accepts it
// until it expires, logout or not. With Config.RevocationFeed the Guard
// follows Gatehouse's revocation feed (GET /v1/revocations/stream,
// server-sent events, authenticated with the IntrospectionKey) and, about a
// second after Gatehouse commits a revocation, refuses with 401
// error="invalid_token":
//
//   - tokens of a revoked session or refresh family (their sid claim):
//     logout, a session or family revoked, refresh-token reuse;
//   - tokens of a user issued before the user's not_before: password change
//     or reset, account disabled, role change, MFA reset (the client
//     refreshes and gets a token with the new roles);
//   - tokens of a client issued before the client's not_before, and tokens
//     signed by a revoked key.
//
// A revoked API key or session also loses its cached introspection answer
// at once instead of after Config.CacheTTL. The check is a few lock-free
// map lookups, made on every request, for a token verified before too; no
// request calls Gatehouse while the feed is up.
//
//	g, err := guard.New(guard.Config{
//		Issuer:           "https://auth.example.com",
//		IntrospectionKey: os.Getenv("GATEHOUSE_INTROSPECTION_KEY"),
//		RevocationFeed:   true,
//	})
//	...
//	defer g.Close()                        // stops the feed's goroutine
//	registry.MustRegister(g.Collector())   // guard_revocation_feed_lag_seconds
//
// New starts one goroutine that holds one streaming connection; Close
// stops it (a Guard without the feed has nothing to close, and Close is
// then a no-op). The connection is made again after an error with a
// backoff of at most 5 seconds, resuming where it stopped (Last-Event-ID),
// and dropped when nothing, not even a heartbeat, arrived for 45 seconds.
//
// When the feed is down, for Config.FeedStaleAfter (10 s) the Guard goes on
// with what it knows: a reconnection replays what it missed. Past that,
// Config.OnStale applies: [StaleIntrospect] (the default) asks Gatehouse
// about each access token, caching each answer for a second — which
// catches a disabled or deleted account, not a revoked session, since
// introspection describes an access token as issued; [StaleReject]
// answers 503. Before the first snapshot the Guard knows no revocation, so
// it introspects each access token until FeedStaleAfter has passed since
// New, then OnStale applies. [Guard.FeedHealthy] tells a readiness probe
// whether the feed is up, and the gauge guard_revocation_feed_lag_seconds
// of [Guard.Collector] how long it has not been (0 while it is); nothing
// is registered on the global registry. Revocations are kept for
// Config.FeedRetain (1 hour), which must be at least Gatehouse's
// access-token lifetime.
//
// # Concurrency
//
// A Guard is safe for concurrent use by any number of goroutines and is
// meant to be shared by the whole process: its caches, its JWKS and its
// revocation feed live in it. A [Principal] may be shared between
// requests; treat it as read-only.
package guard
