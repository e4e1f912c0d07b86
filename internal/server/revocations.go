package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

// errRevoked is why a verified access token is refused: the feed carries
// a revocation of its session, subject or client (SPEC §15).
var errRevoked = errors.New("the access token has been revoked")

// verifyAccess checks an access token: its signature and claims, then the
// revocations this node knows (in memory, fed by the revocation feed —
// never a query per request). /v1 and userinfo come through here (SPEC
// §15); introspection describes the token as issued.
func (s *Server) verifyAccess(tok string) (*auth.AccessClaims, error) {
	c, err := s.keys.Verify(tok)
	if err != nil {
		return nil, err
	}
	if s.revoked != nil {
		if _, revoked := s.revoked.Revoked(revfeed.Claims{SID: c.SID, Sub: c.Subject, ClientID: c.ClientID, KID: c.KID, IssuedAt: c.IssuedAt}); revoked {
			return nil, errRevoked
		}
	}
	return c, nil
}

// streamMaxAge is how long a revocation stream stays open: the server ends
// it after an hour so that clients spread over the nodes again (SPEC §15).
const streamMaxAge = time.Hour

// feedCaller authorizes a feed request: an API key with scope introspect
// whose owner's roles still allow it (SPEC §15, §18 H5). It writes the
// refusal and returns false.
func (s *Server) feedCaller(w http.ResponseWriter, r *http.Request) bool {
	_, ok := s.feedPrincipal(w, r)
	return ok
}

// feedPrincipal is feedCaller returning the key's principal.
func (s *Server) feedPrincipal(w http.ResponseWriter, r *http.Request) (*auth.Principal, bool) {
	res, _ := r.Context().Value(keyPrincipal).(*authResult)
	switch {
	case res == nil || (res.p == nil && res.err == nil):
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeProblem(w, http.StatusUnauthorized, "an API key with scope introspect is required")
		return nil, false
	case res.p == nil:
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "the credentials are invalid or expired")
		return nil, false
	case res.p.Kind != auth.KindAPIKey:
		writeProblem(w, http.StatusForbidden, "the revocation feed needs an API key with scope introspect (a resource server's credential)")
		return nil, false
	}
	if err := s.auth.AuthorizeIntrospection(r.Context(), res.p); err != nil {
		switch auth.ErrorCode(err) {
		case auth.EFORBIDDEN:
			writeProblem(w, http.StatusForbidden, auth.ErrorMessage(err))
		case auth.EUNAUTHORIZED:
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "the key's account no longer exists or is disabled")
		default:
			s.writeFailure(w, r.Context(), "revocation feed authorization", err)
		}
		return nil, false
	}
	return res.p, true
}

// feedCursor reads a cursor parameter: ok is false after writing 400 (a
// malformed cursor) or 410 (older than retention).
func (s *Server) feedCursor(w http.ResponseWriter, text string) (revfeed.Cursor, bool) {
	c, err := revfeed.ParseCursor(text)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "the cursor is malformed")
		return c, false
	}
	if s.feed.Gone(c) {
		writeProblem(w, http.StatusGone, "the cursor is older than the feed's retention: start again without one (the snapshot)")
		return c, false
	}
	return c, true
}

// revocationStream serves GET /v1/revocations/stream: the snapshot (or,
// with Last-Event-ID, what came after that event), `event: ready`, then
// each event as it commits, with a heartbeat comment (SPEC §15).
func (s *Server) revocationStream(w http.ResponseWriter, r *http.Request) {
	if s.feed == nil {
		writeProblem(w, http.StatusNotFound, "the revocation feed is off (GATEHOUSE_REVOCATION_FEED)")
		return
	}
	p, ok := s.feedPrincipal(w, r)
	if !ok {
		return
	}
	keyHash := auth.HashToken(presentedAPIKey(r))
	var (
		evs  []revfeed.Event
		head revfeed.Cursor
	)
	if last := strings.TrimSpace(r.Header.Get("Last-Event-ID")); last != "" {
		c, ok := s.feedCursor(w, last)
		if !ok {
			return
		}
		evs, head, _ = s.feed.Since(c, true)
	} else {
		evs, head = s.feed.Snapshot()
	}
	rc := http.NewResponseController(w)
	// The server's write timeout would cut the stream: this handler ends
	// it itself.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.log.Info("revocation.feed.connected", "ip", clientIP(r.Context()), "resumed", r.Header.Get("Last-Event-ID") != "")

	send := func(evs []revfeed.Event) error {
		for i := range evs {
			if err := writeSSE(w, evs[i].ID, evs[i].Type, &evs[i]); err != nil {
				return err
			}
			if c, err := revfeed.ParseCursor(evs[i].ID); err == nil && c.Seq > head.Seq {
				head = c
			}
		}
		return nil
	}
	if err := send(evs); err != nil {
		return
	}
	if err := writeSSE(w, "", "ready", map[string]string{"cursor": head.String()}); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(s.cfg.RevocationHeartbeat)
	defer beat.Stop()
	end := time.NewTimer(streamMaxAge)
	defer end.Stop()
	for {
		evs, next, changed := s.feed.Since(head, false)
		if len(evs) > 0 {
			if send(evs) != nil || rc.Flush() != nil {
				return
			}
			if !s.feedStillAllowed(r.Context(), p, keyHash, evs) {
				// The stream's own credential was revoked, or its owner
				// may no longer introspect: it ends here (after telling
				// the client, which then gets 401/403 on reconnecting).
				return
			}
			continue
		}
		head.At = next.At
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-changed:
		}
	}
}

// feedStillAllowed reports whether an open stream's caller may go on
// reading, given events just sent: its API key revoked, or its owner
// revoked (disabled, demoted, deleted), ends the stream.
func (s *Server) feedStillAllowed(ctx context.Context, p *auth.Principal, keyHash string, evs []revfeed.Event) bool {
	recheck := false
	for _, ev := range evs {
		switch {
		case ev.Type == revfeed.TypeCredentialRevoked && ev.Kind == revfeed.KindAPIKey && ev.SHA256 == keyHash:
			return false
		case ev.Type == revfeed.TypeSubjectRevoked && ev.Sub == p.UserID:
			recheck = true
		}
	}
	if recheck {
		return s.auth.AuthorizeIntrospection(ctx, p) == nil
	}
	return true
}

// presentedAPIKey is the API key a request carries (X-API-Key, or a
// bearer gth_ key).
func presentedAPIKey(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k
	}
	if tok, ok := bearerToken(r); ok && auth.IsAPIKey(tok) {
		return tok
	}
	return ""
}

// writeSSE writes one server-sent event.
func writeSSE(w http.ResponseWriter, id, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var sb strings.Builder
	if id != "" {
		sb.WriteString("id: " + id + "\n")
	}
	sb.WriteString("event: " + event + "\ndata: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	_, err = w.Write([]byte(sb.String()))
	return err
}

// maxPollWait bounds the long-poll's wait.
const maxPollWait = 60 * time.Second

// revocationPoll serves GET /v1/revocations?after=&wait=: the same events
// as the stream as {"events", "cursor"}, waiting up to wait for one when
// there is none (SPEC §15).
func (s *Server) revocationPoll(w http.ResponseWriter, r *http.Request) {
	if s.feed == nil {
		writeProblem(w, http.StatusNotFound, "the revocation feed is off (GATEHOUSE_REVOCATION_FEED)")
		return
	}
	if !s.feedCaller(w, r) {
		return
	}
	q := r.URL.Query()
	wait := time.Duration(0)
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			// Bare seconds, as some clients send.
			var n int
			if _, serr := fmt.Sscanf(v, "%d", &n); serr != nil || fmt.Sprint(n) != v {
				writeProblem(w, http.StatusBadRequest, "wait must be a duration such as 25s")
				return
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 || d > maxPollWait {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("wait must be between 0s and %s", maxPollWait))
			return
		}
		wait = d
	}
	var (
		evs  []revfeed.Event
		head revfeed.Cursor
	)
	if after := q.Get("after"); after != "" {
		c, ok := s.feedCursor(w, after)
		if !ok {
			return
		}
		evs, head, _ = s.feed.Since(c, false)
		if len(evs) == 0 && wait > 0 {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
			ctx, cancel := context.WithTimeout(r.Context(), wait)
			evs, head = s.feed.Wait(ctx, c)
			cancel()
		}
	} else {
		evs, head = s.feed.Snapshot()
	}
	if evs == nil {
		evs = []revfeed.Event{}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "cursor": head.String()})
}

// documentRevocations adds the feed's two plain handlers to the OpenAPI
// document.
func documentRevocations(doc *huma.OpenAPI) {
	str := func(desc string) *huma.Schema { return &huma.Schema{Type: "string", Description: desc} }
	event := &huma.Schema{Type: "object", Description: "a revocation (SPEC §15); only the fields of its type are set", Properties: map[string]*huma.Schema{
		"id":         str("the event's cursor"),
		"type":       {Type: "string", Enum: []any{revfeed.TypeSessionRevoked, revfeed.TypeSubjectRevoked, revfeed.TypeClientRevoked, revfeed.TypeKeyRevoked, revfeed.TypeCredentialRevoked}},
		"at":         {Type: "string", Format: "date-time"},
		"sid":        str("session.revoked: the access tokens' sid"),
		"sub":        str("subject.revoked: the user"),
		"client_id":  str("client.revoked: the client"),
		"kid":        str("key.revoked: the signing key"),
		"kind":       {Type: "string", Enum: []any{revfeed.KindAPIKey, revfeed.KindSession}, Description: "credential.revoked"},
		"sha256":     str("credential.revoked: hex SHA-256 of the credential"),
		"not_before": {Type: "integer", Description: "subject.revoked, client.revoked: tokens with iat before this (Unix seconds) are dead"},
	}}
	problem := &huma.Response{Description: "RFC 9457 problem", Content: map[string]*huma.MediaType{"application/problem+json": {Schema: &huma.Schema{Type: "object"}}}}
	security := []map[string][]string{{"apiKey": {}}}
	doc.AddOperation(&huma.Operation{
		OperationID: "revocation-stream", Method: http.MethodGet, Path: "/v1/revocations/stream", Tags: []string{"revocations"},
		Summary: "Revocation feed as server-sent events",
		Description: "Every live event (the snapshot: at most one access-token lifetime of revocations), then `event: ready` (data {\"cursor\"}), then each event as it commits; `: heartbeat` comments every GATEHOUSE_REVOCATION_HEARTBEAT; `id:` on each event. " +
			"Reconnect with Last-Event-ID: events from 5 s before it are sent again (duplicates are harmless). Closed by the server after an hour. Needs an API key with scope introspect. docs/revocation.md.",
		Security:   security,
		Parameters: []*huma.Param{{Name: "Last-Event-ID", In: "header", Schema: str("the id of the last event received")}},
		Responses: map[string]*huma.Response{
			"200": {Description: "text/event-stream; each data: line is an event", Content: map[string]*huma.MediaType{"text/event-stream": {Schema: event}}},
			"400": problem, "401": problem, "403": problem, "410": problem,
		},
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "revocation-poll", Method: http.MethodGet, Path: "/v1/revocations", Tags: []string{"revocations"},
		Summary:     "Revocation feed as a JSON long-poll",
		Description: "The same events as the stream. Without after: the snapshot. With after: the events after that cursor, waiting up to wait (at most 60s) for one. Needs an API key with scope introspect.",
		Security:    security,
		Parameters: []*huma.Param{
			{Name: "after", In: "query", Schema: str("a cursor from an earlier answer")},
			{Name: "wait", In: "query", Schema: str("how long to wait for an event, e.g. 25s")},
		},
		Responses: map[string]*huma.Response{
			"200": {Description: "events and the cursor to continue from", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
				"events": {Type: "array", Items: event}, "cursor": str("pass as after next time"),
			}}}}},
			"400": problem, "401": problem, "403": problem, "410": problem,
		},
	})
}
