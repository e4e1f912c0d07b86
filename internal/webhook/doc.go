// Package webhook holds the groundwork for Gatehouse's outgoing webhooks and
// blocking hooks (SPEC §16).
//
// It provides two independent pieces:
//
//   - Standard Webhooks signing (https://www.standardwebhooks.com): [Sign],
//     [Headers] and [Verify], plus secrets in the "whsec_<base64>" form
//     ([NewSecret], [ParseSecret]). Every webhook delivery and every blocking
//     hook call (before_register, before_login) carries the webhook-id,
//     webhook-timestamp and webhook-signature headers built by [Headers]; while
//     an endpoint's secret is being rotated (POST
//     /v1/admin/webhooks/{id}/secret) both secrets sign for 24 h, so the
//     signature header holds two space-separated "v1,…" entries. [Verify] is
//     the receiver's side, used by tests and the documentation's receiver
//     example.
//
//   - An SSRF-hardened HTTP client, [NewClient], used for all deliveries and
//     hook calls. Only https URLs are accepted ([CheckScheme]); its dialer
//     refuses loopback, private, link-local (including the cloud metadata
//     address 169.254.169.254), CGNAT, unspecified and multicast addresses at
//     connect time ([CheckAddr]), so a host name that resolves — or is
//     re-bound — to an internal address cannot be reached. Redirects are never
//     followed (a 3xx is a failed delivery) and no proxy is taken from the
//     environment. GATEHOUSE_WEBHOOK_ALLOW_PRIVATE (development) maps to
//     [ClientOptions].AllowPrivate, which lifts the address restrictions and
//     also permits plain http.
//
//   - The delivery [Worker]: it claims due messages of the outbox through a
//     [Queue] (auth.Service: the rows live in the database, written in the
//     transaction of the audit event they report), with a [Lease] so that
//     workers on every node share the queue, POSTs each one with [Headers]
//     (the message id as webhook-id on every attempt, this attempt's
//     timestamp, one signature per live secret), reads at most
//     [ExcerptSize] bytes of the answer, and hands the [Outcome] back to the
//     Queue, which decides what follows (retry, failure, disabling the
//     endpoint). Notify wakes it after a local commit; otherwise it polls.
//     A Worker is safe for concurrent use once Init has run.
package webhook
