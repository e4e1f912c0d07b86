package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gatehouse/guard"
)

// Post is one blog post. Author is the Gatehouse user id (the principal's
// Subject) of whoever created it.
type Post struct {
	ID        string    `json:"id"`
	Author    string    `json:"author"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// store keeps posts in memory; it is safe for concurrent use. Values
// handed out are copies.
type store struct {
	mu    sync.RWMutex
	posts map[string]*Post
	next  int
}

func newStore() *store { return &store{posts: map[string]*Post{}} }

func (s *store) create(p Post) Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	p.ID = strconv.Itoa(s.next)
	s.posts[p.ID] = &p
	return p
}

func (s *store) get(id string) (Post, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.posts[id]
	if !ok {
		return Post{}, false
	}
	return *p, true
}

func (s *store) list() []Post {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Post, 0, len(s.posts))
	for _, p := range s.posts {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Post) int { // oldest first: ids count up
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return cmp.Compare(x, y)
	})
	return out
}

// update applies fn to the stored post; false when it is gone.
func (s *store) update(id string, fn func(*Post)) (Post, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.posts[id]
	if !ok {
		return Post{}, false
	}
	fn(p)
	return *p, true
}

func (s *store) delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.posts[id]
	delete(s.posts, id)
	return ok
}

// service is the HTTP API of the posts service.
type service struct {
	store *store
	now   func() time.Time
}

// newHandler lists every route and what it requires. Roles say what a
// user may do; scopes say what the presented credential may do: changing
// anything needs scope write, and then the rule of the route.
func newHandler(g *guard.Guard) http.Handler {
	s := &service{store: newStore(), now: time.Now}
	write := guard.RequireScopes("write")
	mux := http.NewServeMux()

	// Reading is public. A credential, when sent, must still be valid.
	mux.Handle("GET /posts", g.Optional(http.HandlerFunc(s.list)))
	mux.Handle("GET /posts/{id}", g.Optional(guard.Authorize(s.load, public, s.get)))

	// Any user whose credential carries write; the author is the caller.
	mux.Handle("POST /posts", g.Middleware(write(http.HandlerFunc(s.create))))

	// The author, or an admin.
	mux.Handle("PATCH /posts/{id}", g.Middleware(write(guard.Authorize(s.load, authorOrAdmin, s.patch))))

	// Editors and admins only, whoever the author. The role is checked
	// before the post is looked up, so others cannot probe which exist.
	mux.Handle("DELETE /posts/{id}", g.Middleware(write(guard.RequireRoles("editor", "admin")(guard.Authorize(s.load, public, s.delete)))))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such endpoint")
	})
	return securityHeaders(mux)
}

func public(*guard.Principal, Post) error { return nil }

func authorOrAdmin(p *guard.Principal, post Post) error {
	return guard.OwnerOr(p, post.Author, "admin")
}

// load finds the post named in the path, or answers 404.
func (s *service) load(w http.ResponseWriter, r *http.Request) (Post, bool) {
	p, ok := s.store.get(r.PathValue("id"))
	if !ok {
		problem(w, http.StatusNotFound, "no such post")
	}
	return p, ok
}

func (s *service) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"posts": s.store.list()})
}

func (s *service) get(w http.ResponseWriter, r *http.Request, p Post) {
	writeJSON(w, http.StatusOK, p)
}

type postInput struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

func (s *service) create(w http.ResponseWriter, r *http.Request) {
	caller, _ := guard.PrincipalFrom(r.Context())
	var in postInput
	if !decode(w, r, &in) {
		return
	}
	if in.Title == nil {
		problem(w, http.StatusUnprocessableEntity, "title is required")
		return
	}
	if in.Body == nil {
		in.Body = new(string)
	}
	if msg := validate(*in.Title, *in.Body); msg != "" {
		problem(w, http.StatusUnprocessableEntity, msg)
		return
	}
	now := s.now().UTC()
	p := s.store.create(Post{Author: caller.Subject, Title: *in.Title, Body: *in.Body, CreatedAt: now, UpdatedAt: now})
	w.Header().Set("Location", "/posts/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
}

func (s *service) patch(w http.ResponseWriter, r *http.Request, p Post) {
	var in postInput
	if !decode(w, r, &in) {
		return
	}
	title, body := p.Title, p.Body
	if in.Title != nil {
		title = *in.Title
	}
	if in.Body != nil {
		body = *in.Body
	}
	if msg := validate(title, body); msg != "" {
		problem(w, http.StatusUnprocessableEntity, msg)
		return
	}
	updated, ok := s.store.update(p.ID, func(p *Post) {
		p.Title, p.Body, p.UpdatedAt = title, body, s.now().UTC()
	})
	if !ok {
		problem(w, http.StatusNotFound, "no such post")
		return
	}
	writeJSON(w, http.StatusOK, updated)
}

func (s *service) delete(w http.ResponseWriter, r *http.Request, p Post) {
	if !s.store.delete(p.ID) {
		problem(w, http.StatusNotFound, "no such post")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func validate(title, body string) string {
	switch {
	case strings.TrimSpace(title) == "":
		return "title must not be empty"
	case utf8.RuneCountInString(title) > 200:
		return "title is longer than 200 characters"
	case utf8.RuneCountInString(body) > 20_000:
		return "body is longer than 20000 characters"
	}
	return ""
}

const maxBody = 64 << 10

// decode reads a JSON object body into v, or answers 400/413/415.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		problem(w, http.StatusUnsupportedMediaType, "the body must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem(w, http.StatusRequestEntityTooLarge, "the body is larger than 64 KiB")
			return false
		}
		problem(w, http.StatusBadRequest, "the body is not a valid JSON object: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		problem(w, http.StatusBadRequest, "the body holds more than one JSON value")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// problem writes an RFC 9457 problem document, as guard does for its own
// refusals.
func problem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
