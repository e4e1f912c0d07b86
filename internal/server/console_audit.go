package server

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// The console's audit log (SPEC §17): filters, keyset pages with a signed
// cursor, and the export as JSON Lines or CSV, streamed.

func (s *Server) registerConsoleAudit(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/audit", s.handleConsoleAudit)
	mux.HandleFunc("GET /admin/audit/export", s.handleConsoleAuditExport)
}

// auditLogView is the audit log page.
type auditLogView struct {
	// The filters as the form shows them.
	Type, User, From, To string
	Events               []auditLogRow
	// Older is the link to the next page (older events); First the link
	// back to the newest, when this is not the first page.
	Older, First string
	// Export are the filters as hidden fields of the export form.
	Export []auditLogField
	// Searched says whether any filter is set.
	Searched bool
}

type auditLogRow struct {
	ID, At, Type, UserID, IP, Details string
	// UserFilter is the link that filters the log by this event's user.
	UserFilter string
	// Actor is the administrator who acted (details.actor), when another
	// account than UserID: the row links to their account too.
	Actor string
}

type auditLogField struct{ Name, Value string }

// auditLogFilters is a request's filter, as typed and as a query.
type auditLogFilters struct {
	typ, user, from, to string
	q                   auth.AuditQuery
}

// datetimeLayouts are what a datetime-local input sends (with or without
// seconds), and RFC 3339 for links written by hand.
var datetimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

// parseConsoleTime reads a time filter; a datetime-local value is UTC (the
// page says so: the console shows every time in UTC).
func parseConsoleTime(v string) (time.Time, bool) {
	for _, l := range datetimeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// readAuditFilters reads the filters of r's query. The user filter takes an
// account's id or email (auth.AuditUserID). A filter that cannot be used
// comes back as a status and a message for the page; err is an unexpected
// failure.
func (s *Server) readAuditFilters(r *http.Request) (f auditLogFilters, status int, msg string, err error) {
	v := r.URL.Query()
	f = auditLogFilters{typ: strings.TrimSpace(v.Get("type")), user: strings.TrimSpace(v.Get("user")),
		from: strings.TrimSpace(v.Get("from")), to: strings.TrimSpace(v.Get("to"))}
	f.q.Type = f.typ
	for _, t := range []struct {
		raw  string
		dst  *time.Time
		name string
	}{{f.from, &f.q.From, "From"}, {f.to, &f.q.To, "To"}} {
		if t.raw == "" {
			continue
		}
		tm, ok := parseConsoleTime(t.raw)
		if !ok {
			return f, http.StatusBadRequest, fmt.Sprintf("%s is not a date and time (YYYY-MM-DDThh:mm, UTC).", t.name), nil
		}
		*t.dst = tm
	}
	if f.user != "" {
		id, err := s.auth.AuditUserID(r.Context(), f.user)
		switch code := auth.ErrorCode(err); {
		case err == nil:
			f.q.UserID = id
		case code == auth.ENOTFOUND:
			return f, http.StatusNotFound, "No account has that email. To see the events of a deleted account, filter by its id.", nil
		case code == auth.EINVALID:
			return f, http.StatusBadRequest, "The user filter is neither an account id nor an email address.", nil
		default:
			return f, 0, "", err
		}
	}
	return f, 0, "", nil
}

// values are the filters as a query (empty ones left out).
func (f auditLogFilters) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"type", f.typ}, {"user", f.user}, {"from", f.from}, {"to", f.to}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

func (s *Server) handleConsoleAudit(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	f, status, msg, err := s.readAuditFilters(r)
	if err != nil {
		s.consoleFailure(w, r, "console audit filters", err)
		return
	}
	v := auditLogView{Type: f.typ, User: f.user, From: f.from, To: f.to, Searched: len(f.values()) > 0}
	d := consoleData{Title: "Audit log", Nav: "audit", Notice: s.consoleNotice(r)}
	if msg != "" {
		d.Error, d.Data = msg, v
		s.renderConsole(w, status, "audit", c, d)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cursor := r.URL.Query().Get("cursor")
	events, next, err := s.auth.AuditPage(r.Context(), f.q, cursor, limit)
	if err != nil {
		st, m := s.pageError(w, r, "console audit", err)
		if auth.ErrorCode(err) == auth.EINVALID {
			// A query the page cannot use: a bad request, like a bad filter.
			st = http.StatusBadRequest
		}
		if errors.Is(err, auth.ErrBadCursor) {
			m = "That page link is not valid here (it was changed, or made by another server). Start again from the newest events."
		}
		d.Error, d.Data = m, v
		s.renderConsole(w, st, "audit", c, d)
		return
	}
	for _, e := range events {
		row := auditLogRow{ID: e.ID, At: consoleTime(e.At), Type: e.Type, UserID: e.UserID, IP: e.IP, Details: compactDetails(e.Details)}
		if e.UserID != "" {
			q := f.values()
			q.Set("user", e.UserID)
			row.UserFilter = "/admin/audit?" + q.Encode()
		}
		if a, ok := e.Details["actor"].(string); ok && a != "" && a != e.UserID {
			row.Actor = a
		}
		v.Events = append(v.Events, row)
	}
	page := f.values()
	if limit > 0 {
		page.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.First = "/admin/audit?" + page.Encode()
	}
	if next != "" {
		page.Set("cursor", next)
		v.Older = "/admin/audit?" + page.Encode()
	}
	for _, k := range []string{"type", "user", "from", "to"} {
		if x := f.values().Get(k); x != "" {
			v.Export = append(v.Export, auditLogField{k, x})
		}
	}
	d.Data = v
	s.renderConsole(w, http.StatusOK, "audit", c, d)
}

// consoleTime is how the console shows a time: UTC, to the second.
func consoleTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// compactDetails shows an event's details as key=value pairs, by key:
// strings as they are (quoted when they hold a space, quote or '='),
// anything else as JSON.
func compactDetails(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := d[k].(type) {
		case string:
			if v == "" || strings.ContainsAny(v, " \t\r\n\"'=") {
				b.WriteString(strconv.Quote(v))
			} else {
				b.WriteString(v)
			}
		default:
			j, err := json.Marshal(v)
			if err != nil {
				j = []byte(fmt.Sprint(v))
			}
			b.Write(j)
		}
	}
	return b.String()
}

// exportWriteWindow is how long each flushed part of an export may take to
// reach the client: the server's write timeout would cut a long export
// off, so every flush moves the deadline on.
const exportWriteWindow = 60 * time.Second

// handleConsoleAuditExport streams the events the filters select, newest
// first, as JSON Lines or CSV: rows go out as the store reads them, never
// the whole log in memory. It is a read, but a sensitive one: it needs a
// recent sign-in (step-up), and it is audited (admin.audit.exported).
func (s *Server) handleConsoleAuditExport(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	// A read, but a sensitive one: step-up, back to this same URL.
	if !s.consoleRecent(w, r, c, r.URL.RequestURI()) {
		return
	}
	f, status, msg, err := s.readAuditFilters(r)
	if err != nil {
		s.consoleFailure(w, r, "console audit export filters", err)
		return
	}
	format := r.URL.Query().Get("format")
	if msg == "" && format != "jsonl" && format != "csv" {
		status, msg = http.StatusBadRequest, "Choose an export format: JSON Lines or CSV."
	}
	if msg != "" {
		s.renderConsole(w, status, "audit", c, consoleData{Title: "Audit log", Nav: "audit", Error: msg,
			Data: auditLogView{Type: f.typ, User: f.user, From: f.from, To: f.to}})
		return
	}
	ctx := r.Context()
	h := w.Header()
	name := "gatehouse-audit-" + time.Now().UTC().Format("20060102T150405Z") + "." + format
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/jsonl; charset=utf-8")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		// The headers only: no export, so nothing to read or audit.
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	out := &exportCounter{w: w}
	enc := newAuditEncoder(out, format, func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
		return rc.Flush()
	})
	err = s.auth.ExportAudit(ctx, f.q, format, consoleMeta(ctx, c), enc.write)
	if err == nil {
		err = enc.close()
	}
	if err == nil {
		return
	}
	if out.n == 0 && ctx.Err() == nil {
		// Nothing sent yet: an ordinary error page instead.
		h.Del("Content-Disposition")
		st, m := s.pageError(w, r, "console audit export", err)
		if auth.ErrorCode(err) == auth.EINVALID {
			st = http.StatusBadRequest
		}
		s.renderConsole(w, st, "audit", c, consoleData{Title: "Audit log", Nav: "audit", Error: m,
			Data: auditLogView{Type: f.typ, User: f.user, From: f.from, To: f.to}})
		return
	}
	// Part of the file is out: cut the connection, so that the download
	// fails rather than looking complete.
	s.log.WarnContext(ctx, "audit export ended early", "err", err, "bytes", out.n, "request_id", requestID(ctx))
	panic(http.ErrAbortHandler)
}

// exportCounter counts what reached the client.
type exportCounter struct {
	w io.Writer
	n int64
}

func (c *exportCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// auditExportFlushRows is how many rows an export writes between flushes.
const auditExportFlushRows = 500

// auditEncoder writes audit events as JSON Lines (one AuditEventBody, the
// admin API's shape, per line) or as CSV (a header row, then id, at, type,
// user_id, ip and the details as JSON). Rows are buffered and flushed to
// the client every auditExportFlushRows rows.
type auditEncoder struct {
	buf   *bufio.Writer
	csv   *csv.Writer
	json  *json.Encoder
	flush func() error
	rows  int
	rec   []string
}

func newAuditEncoder(w io.Writer, format string, flush func() error) *auditEncoder {
	e := &auditEncoder{buf: bufio.NewWriterSize(w, 32<<10), flush: flush}
	if format == "csv" {
		e.csv = csv.NewWriter(e.buf)
		e.rec = make([]string, 6)
		// The header row stays in the buffer with the first rows.
		_ = e.csv.Write([]string{"id", "at", "type", "user_id", "ip", "details"})
	} else {
		e.json = json.NewEncoder(e.buf)
		e.json.SetEscapeHTML(false)
	}
	return e
}

func (e *auditEncoder) write(ev *auth.AuditEvent) error {
	d := ev.Details
	if d == nil {
		d = map[string]any{}
	}
	if e.csv != nil {
		details, err := json.Marshal(d)
		if err != nil {
			return err
		}
		r := e.rec
		r[0], r[1], r[2], r[3], r[4], r[5] = ev.ID, ev.At.UTC().Format(time.RFC3339Nano), ev.Type, ev.UserID, ev.IP, string(details)
		for i := range r {
			r[i] = csvCell(r[i])
		}
		if err := e.csv.Write(r); err != nil {
			return err
		}
	} else if err := e.json.Encode(AuditEventBody{ID: ev.ID, Type: ev.Type, At: ev.At.UTC(), UserID: ev.UserID, IP: ev.IP, Details: d}); err != nil {
		return err
	}
	e.rows++
	if e.rows%auditExportFlushRows == 0 {
		return e.send()
	}
	return nil
}

// send pushes what is buffered to the client.
func (e *auditEncoder) send() error {
	if e.csv != nil {
		e.csv.Flush()
		if err := e.csv.Error(); err != nil {
			return err
		}
	}
	if err := e.buf.Flush(); err != nil {
		return err
	}
	return e.flush()
}

func (e *auditEncoder) close() error { return e.send() }

// csvCell defuses a cell a spreadsheet would run as a formula (CSV
// injection: a value starting with = + - @, a tab or a carriage return, say
// a crafted user agent or email in the details): a leading single quote
// makes it text. encoding/csv does the quoting.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
