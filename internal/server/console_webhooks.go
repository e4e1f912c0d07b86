package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// The console's webhook endpoints (SPEC §16, §17): list with their state,
// register (the secret shown once), edit the URL, description and events,
// enable or disable, rotate the secret, send a test event, delete; each
// endpoint's delivery log, filtered by state and paged, with a retry per
// delivery. Endpoints of the configuration file are read-only here, as
// over the API, except for tests and retries, which the API allows too.

func (s *Server) registerConsoleWebhooks(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/webhooks", s.handleConsoleWebhooks)
	mux.HandleFunc("POST /admin/webhooks", s.handleConsoleWebhookCreate)
	mux.HandleFunc("GET /admin/webhooks/{id}", s.handleConsoleWebhook)
	mux.HandleFunc("POST /admin/webhooks/{id}/edit", s.handleConsoleWebhookEdit)
	mux.HandleFunc("POST /admin/webhooks/{id}/enable", s.handleConsoleWebhookEnabled(true))
	mux.HandleFunc("POST /admin/webhooks/{id}/disable", s.handleConsoleWebhookEnabled(false))
	mux.HandleFunc("POST /admin/webhooks/{id}/secret", s.handleConsoleWebhookRotate)
	mux.HandleFunc("POST /admin/webhooks/{id}/test", s.handleConsoleWebhookTest)
	mux.HandleFunc("GET /admin/webhooks/{id}/delete", s.handleConsoleWebhookDeletePage)
	mux.HandleFunc("POST /admin/webhooks/{id}/delete", s.handleConsoleWebhookDelete)
	mux.HandleFunc("POST /admin/webhooks/{id}/deliveries/{msg}/retry", s.handleConsoleWebhookRetry)
}

// webhookListView is the webhooks page: the endpoints and the registration
// form.
type webhookListView struct {
	Hooks []webhookListRow
	Form  webhookRegForm
	Open  bool
}

type webhookListRow struct {
	ID, URL, Description, Events string
	Enabled, FromConfig          bool
	DisabledReason, FailingSince string
}

// webhookRegForm is the registration form, and an endpoint's edit form
// (which leaves Enabled to the page's Enable and Disable buttons).
type webhookRegForm struct {
	URL, Description string
	Enabled          bool
	// All subscribes to the default catalogue ("*"); Events are the types
	// to offer, each checked or not.
	All    bool
	Events []webhookEventChoice
}

type webhookEventChoice struct {
	Name    string
	Checked bool
	// Explicit marks a type sent only when named (login.failed).
	Explicit bool
}

// webhookEventChoices are the catalogue's types and the explicit-only
// ones, checked when in sel.
func webhookEventChoices(sel []string) []webhookEventChoice {
	var out []webhookEventChoice
	for _, e := range auth.WebhookCatalogue {
		out = append(out, webhookEventChoice{Name: e, Checked: slices.Contains(sel, e)})
	}
	out = append(out, webhookEventChoice{Name: auth.EventLoginFailed, Checked: slices.Contains(sel, auth.EventLoginFailed), Explicit: true})
	return out
}

// webhookPageView is one endpoint's page and its delivery log.
type webhookPageView struct {
	E                                   WebhookBody
	Events, Created, Updated            string
	FailingSince, PreviousSecretExpires string
	// Secret is a secret just made, shown this once; SecretNote says what
	// happened.
	Secret, SecretNote string
	Confirm            bool
	// Edit is the edit form (endpoints of the configuration file have
	// none): the endpoint's settings, or what was sent and refused, with
	// EditOpen set.
	Edit     webhookRegForm
	EditOpen bool
	// The delivery log: the state filter, a page, and the links around it.
	Status       string
	Statuses     []string
	Deliveries   []webhookDeliveryRow
	Older, First string
}

type webhookDeliveryRow struct {
	ID, Type, State, Created, Next string
	Attempts                       []webhookAttemptRow
	// Last sums up the newest attempt.
	Last string
}

type webhookAttemptRow struct {
	At, Result, Excerpt string
}

func (s *Server) handleConsoleWebhooks(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	s.renderConsoleWebhooks(w, r, c, http.StatusOK, "", webhookRegForm{Enabled: true, All: true, Events: webhookEventChoices(nil)}, false)
}

func (s *Server) renderConsoleWebhooks(w http.ResponseWriter, r *http.Request, c *consoleCaller, status int, msg string, f webhookRegForm, open bool) {
	es, err := s.auth.Webhooks(r.Context())
	if err != nil {
		s.consoleFailure(w, r, "console webhooks", err)
		return
	}
	v := webhookListView{Form: f, Open: open}
	for _, e := range es {
		row := webhookListRow{ID: e.ID, URL: e.URL, Description: e.Description, Events: strings.Join(e.Events, ", "),
			Enabled: e.Enabled, FromConfig: e.FromConfig, DisabledReason: e.DisabledReason}
		if e.FailingSince != nil {
			row.FailingSince = consoleTime(*e.FailingSince)
		}
		v.Hooks = append(v.Hooks, row)
	}
	s.renderConsole(w, status, "webhooks", c, consoleData{Title: "Webhooks", Nav: "webhooks", Notice: s.consoleNotice(r), Error: msg, Data: v})
}

func (s *Server) handleConsoleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleWrite(w, r, "/admin/webhooks")
	if !ok {
		return
	}
	p := r.PostForm
	events := p["events"]
	f := webhookRegForm{URL: strings.TrimSpace(p.Get("url")), Description: p.Get("description"), Enabled: p.Has("enabled"),
		All: p.Has("all"), Events: webhookEventChoices(events)}
	if f.All {
		events = append([]string{auth.WebhookAllEvents}, events...)
	}
	enabled := f.Enabled
	ctx := r.Context()
	e, secret, err := s.auth.CreateWebhook(ctx, auth.WebhookInput{URL: f.URL, Events: events, Description: f.Description, Enabled: &enabled}, consoleMeta(ctx, c))
	if err != nil {
		st, msg := s.pageError(w, r, "console create webhook", err)
		s.renderConsoleWebhooks(w, r, c, st, msg, f, true)
		return
	}
	s.renderConsoleWebhook(w, r, c, e, webhookExtra{secret: secret,
		note: "The endpoint is registered. Copy its signing secret now: it is shown only this once."})
}

// webhookExtra is what a webhook page shows besides the endpoint.
type webhookExtra struct {
	secret, note, notice string
	confirm              bool
	// status and msg answer a refused edit, whose fields are in form
	// (nil: the edit form shows the endpoint's settings).
	status int
	msg    string
	form   *webhookRegForm
}

// webhookEditForm is the edit form filled with an endpoint's settings.
func webhookEditForm(e *auth.WebhookEndpoint) webhookRegForm {
	return webhookRegForm{URL: e.URL, Description: e.Description,
		All: slices.Contains(e.Events, auth.WebhookAllEvents), Events: webhookEventChoices(e.Events)}
}

func (s *Server) renderConsoleWebhook(w http.ResponseWriter, r *http.Request, c *consoleCaller, e *auth.WebhookEndpoint, x webhookExtra) {
	v := webhookPageView{E: webhookView(e), Events: strings.Join(e.Events, ", "), Created: consoleTime(e.CreatedAt), Updated: consoleTime(e.UpdatedAt),
		Secret: x.secret, SecretNote: x.note, Confirm: x.confirm,
		Statuses: []string{auth.DeliveryPending, auth.DeliveryDelivered, auth.DeliveryFailed}}
	if !e.FromConfig {
		v.Edit = webhookEditForm(e)
		if x.form != nil {
			v.Edit, v.EditOpen = *x.form, true
		}
	}
	if e.FailingSince != nil {
		v.FailingSince = consoleTime(*e.FailingSince)
	}
	if t := e.PreviousSecretExpiresAt; t != nil && t.After(time.Now()) {
		v.PreviousSecretExpires = consoleTime(*t)
	}
	title := "Webhook endpoint"
	if x.confirm {
		title = "Delete this endpoint?"
	} else {
		// The delivery log, on the endpoint's own page.
		q := r.URL.Query()
		if r.Method != http.MethodGet {
			q = url.Values{}
		}
		v.Status = q.Get("status")
		cursor := q.Get("cursor")
		limit, _ := strconv.Atoi(q.Get("limit"))
		ds, next, err := s.auth.WebhookDeliveries(r.Context(), e.ID, v.Status, cursor, limit)
		if err != nil {
			st, msg := s.pageError(w, r, "console webhook deliveries", err)
			if auth.ErrorCode(err) == auth.EINVALID {
				// A query the page cannot use (a state, a cursor).
				st = http.StatusBadRequest
			}
			if errors.Is(err, auth.ErrBadCursor) {
				msg = "That page link is not valid here (it was changed, or made by another server). Start again from the newest deliveries."
			}
			s.renderConsole(w, st, "webhook", c, consoleData{Title: title, Nav: "webhooks", Error: msg, Data: v})
			return
		}
		for _, d := range ds {
			v.Deliveries = append(v.Deliveries, webhookDeliveryView(d))
		}
		page := url.Values{}
		if v.Status != "" {
			page.Set("status", v.Status)
		}
		if limit > 0 {
			page.Set("limit", strconv.Itoa(limit))
		}
		base := "/admin/webhooks/" + url.PathEscape(e.ID)
		if cursor != "" {
			v.First = base + "?" + page.Encode() + "#deliveries-h"
		}
		if next != "" {
			page.Set("cursor", next)
			v.Older = base + "?" + page.Encode() + "#deliveries-h"
		}
	}
	status := x.status
	if status == 0 {
		status = http.StatusOK
	}
	s.renderConsole(w, status, "webhook", c, consoleData{Title: title, Nav: "webhooks", Notice: x.notice, Error: x.msg, Data: v})
}

func webhookDeliveryView(d *auth.WebhookDelivery) webhookDeliveryRow {
	row := webhookDeliveryRow{ID: d.ID, Type: d.Type, State: d.State, Created: consoleTime(d.CreatedAt)}
	if d.State == auth.DeliveryPending {
		row.Next = consoleTime(d.NextAttemptAt)
	}
	for _, a := range d.Attempts {
		row.Attempts = append(row.Attempts, webhookAttemptRow{At: consoleTime(a.At), Result: attemptResult(a), Excerpt: a.ResponseExcerpt})
	}
	if n := len(d.Attempts); n > 0 {
		row.Last = attemptResult(d.Attempts[n-1])
	}
	return row
}

// attemptResult sums up an attempt: the status (or that none came), the
// time it took and the error.
func attemptResult(a auth.WebhookAttempt) string {
	res := "no answer"
	if a.StatusCode != 0 {
		res = fmt.Sprintf("HTTP %d", a.StatusCode)
	}
	res += fmt.Sprintf(" in %d ms", a.DurationMS)
	if a.Error != "" {
		res += ": " + a.Error
	}
	return res
}

func (s *Server) handleConsoleWebhook(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	e, err := s.auth.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console webhook", err)
		return
	}
	s.renderConsoleWebhook(w, r, c, e, webhookExtra{notice: s.consoleNotice(r)})
}

// webhookPage is the path of an endpoint's page.
func webhookPage(id string) string { return "/admin/webhooks/" + url.PathEscape(id) }

// handleConsoleWebhookEdit saves the edit form: the URL, description and
// events, as PATCH /v1/admin/webhooks/{id} would (the secret and whether
// the endpoint is enabled stay). A refused value comes back on the
// endpoint's page with the reason and the form as sent; an endpoint of the
// configuration file is refused (409) before anything is checked.
func (s *Server) handleConsoleWebhookEdit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, webhookPage(id))
	if !ok {
		return
	}
	p := r.PostForm
	events := p["events"]
	f := webhookRegForm{URL: strings.TrimSpace(p.Get("url")), Description: p.Get("description"),
		All: p.Has("all"), Events: webhookEventChoices(events)}
	if f.All {
		events = append([]string{auth.WebhookAllEvents}, events...)
	}
	ctx := r.Context()
	cur, err := s.auth.Webhook(ctx, id)
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console edit webhook", err)
		return
	}
	// An unchanged form writes nothing (and audits nothing).
	if cur.URL == f.URL && cur.Description == f.Description && sameSet(cur.Events, events) {
		s.consoleDone(w, r, webhookPage(id), "Nothing to save: the endpoint is as it was.")
		return
	}
	_, err = s.auth.UpdateWebhook(ctx, id, auth.WebhookPatch{URL: &f.URL, Events: &events, Description: &f.Description}, consoleMeta(ctx, c))
	if auth.ErrorCode(err) == auth.EINVALID {
		// Nothing was written: the page shows the endpoint as read above.
		st, msg := s.pageError(w, r, "console edit webhook", err)
		s.renderConsoleWebhook(w, r, c, cur, webhookExtra{status: st, msg: msg, form: &f})
		return
	}
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console edit webhook", err)
		return
	}
	s.consoleDone(w, r, webhookPage(id), "The endpoint is saved.")
}

func (s *Server) handleConsoleWebhookEnabled(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		c, ok := s.consoleWrite(w, r, webhookPage(id))
		if !ok {
			return
		}
		ctx := r.Context()
		if _, err := s.auth.UpdateWebhook(ctx, id, auth.WebhookPatch{Enabled: &on}, consoleMeta(ctx, c)); err != nil {
			s.consoleSectionError(w, r, c, "webhooks", "console enable webhook", err)
			return
		}
		notice := "The endpoint is disabled: nothing is sent to it until it is enabled again."
		if on {
			notice = "The endpoint is enabled."
		}
		s.consoleDone(w, r, webhookPage(id), notice)
	}
}

func (s *Server) handleConsoleWebhookRotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, webhookPage(id))
	if !ok {
		return
	}
	ctx := r.Context()
	secret, until, err := s.auth.RotateWebhookSecret(ctx, id, consoleMeta(ctx, c))
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console rotate webhook secret", err)
		return
	}
	e, err := s.auth.Webhook(ctx, id)
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console webhook", err)
		return
	}
	s.renderConsoleWebhook(w, r, c, e, webhookExtra{secret: secret,
		note: "The endpoint has a new signing secret. Copy it now: it is shown only this once. Until " + consoleTime(until) +
			" deliveries carry a signature with each secret."})
}

func (s *Server) handleConsoleWebhookTest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, webhookPage(id))
	if !ok {
		return
	}
	ctx := r.Context()
	msgID, err := s.auth.TestWebhook(ctx, id, consoleMeta(ctx, c))
	if errors.Is(err, auth.ErrWebhookDisabled) {
		s.consoleSectionRefusal(w, c, "webhooks", http.StatusConflict, "The endpoint is disabled: enable it first, then send a test event.")
		return
	}
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console test webhook", err)
		return
	}
	s.consoleDone(w, r, webhookPage(id), "A webhook.test event is queued ("+msgID+"). Its delivery shows below.")
}

// consoleSectionRefusal is a console page of a section that only says why not.
func (s *Server) consoleSectionRefusal(w http.ResponseWriter, c *consoleCaller, nav string, status int, msg string) {
	s.renderConsole(w, status, "message", c, consoleData{Title: "Admin console", Nav: nav, Error: msg})
}

func (s *Server) handleConsoleWebhookDeletePage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	e, err := s.auth.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console webhook", err)
		return
	}
	if e.FromConfig {
		s.consoleSectionError(w, r, c, "webhooks", "console delete webhook", auth.ErrWebhookFromConfig)
		return
	}
	s.renderConsoleWebhook(w, r, c, e, webhookExtra{confirm: true})
}

func (s *Server) handleConsoleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, webhookPage(id)+"/delete")
	if !ok {
		return
	}
	ctx := r.Context()
	if err := s.auth.DeleteWebhook(ctx, id, consoleMeta(ctx, c)); err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console delete webhook", err)
		return
	}
	s.consoleDone(w, r, "/admin/webhooks", "The endpoint and its delivery log are deleted.")
}

func (s *Server) handleConsoleWebhookRetry(w http.ResponseWriter, r *http.Request) {
	id, msgID := r.PathValue("id"), r.PathValue("msg")
	c, ok := s.consoleWrite(w, r, webhookPage(id))
	if !ok {
		return
	}
	ctx := r.Context()
	err := s.auth.RetryWebhookDelivery(ctx, id, msgID, consoleMeta(ctx, c))
	if errors.Is(err, auth.ErrWebhookDisabled) {
		s.consoleSectionRefusal(w, c, "webhooks", http.StatusConflict, "The endpoint is disabled: enable it first, then send the delivery again.")
		return
	}
	if err != nil {
		s.consoleSectionError(w, r, c, "webhooks", "console retry webhook delivery", err)
		return
	}
	s.consoleDone(w, r, webhookPage(id), "Delivery "+msgID+" is queued again, due now.")
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
