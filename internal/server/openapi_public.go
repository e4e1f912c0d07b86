package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"gopkg.in/yaml.v3"
)

// The OpenAPI document as a client outside GATEHOUSE_ADMIN_ALLOWED_CIDRS
// sees it: without the /v1/admin paths, and without the tags and schemas
// that only they use — otherwise /openapi.json would tell a scan what the
// 404s hide (cidr.go). Clients inside the networks get huma's own document.

// openAPIVariants are the documents huma serves (Config.OpenAPIPath
// "/openapi"): 3.1 and 3.0, as JSON and as YAML.
var openAPIVariants = map[string]struct {
	downgrade, yaml bool
}{
	"/openapi.json":     {},
	"/openapi-3.0.json": {downgrade: true},
	"/openapi.yaml":     {yaml: true},
	"/openapi-3.0.yaml": {downgrade: true, yaml: true},
}

// publicOpenAPI builds and caches the admin-free documents.
type publicOpenAPI struct {
	doc  *huma.OpenAPI
	once sync.Once
	docs map[string][]byte // path → body
	err  error
}

// serve answers path with the admin-free document; it reports false when
// path is not one of the documents.
func (p *publicOpenAPI) serve(s *Server, w http.ResponseWriter, r *http.Request, path string) bool {
	v, ok := openAPIVariants[path]
	if !ok || p == nil || p.doc == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	p.once.Do(p.build)
	if p.err != nil {
		s.log.ErrorContext(r.Context(), "building the public OpenAPI document", "err", p.err, "request_id", requestID(r.Context()))
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return true
	}
	ct := "application/openapi+json"
	if v.yaml {
		ct = "application/openapi+yaml"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(p.docs[path])
	}
	return true
}

func (p *publicOpenAPI) build() {
	full, err := json.Marshal(p.doc)
	if err != nil {
		p.err = err
		return
	}
	down, err := p.doc.Downgrade()
	if err != nil {
		p.err = err
		return
	}
	p.docs = map[string][]byte{}
	for path, v := range openAPIVariants {
		src := full
		if v.downgrade {
			src = down
		}
		b, err := withoutAdmin(src, v.yaml)
		if err != nil {
			p.err = fmt.Errorf("%s: %w", path, err)
			return
		}
		p.docs[path] = b
	}
}

// withoutAdmin removes from an OpenAPI document (JSON) the paths under
// /v1/admin, then every tag no remaining operation names and every schema
// no remaining part of the document refers to, directly or through other
// schemas. It returns JSON, or YAML when asked.
func withoutAdmin(src []byte, asYAML bool) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	paths, _ := doc["paths"].(map[string]any)
	for p := range paths {
		if p == "/v1/admin" || strings.HasPrefix(p, "/v1/admin/") {
			delete(paths, p)
		}
	}
	// Tags still in use.
	used := map[string]bool{}
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for _, op := range ops {
			o, _ := op.(map[string]any)
			tags, _ := o["tags"].([]any)
			for _, t := range tags {
				if name, ok := t.(string); ok {
					used[name] = true
				}
			}
		}
	}
	if tags, ok := doc["tags"].([]any); ok {
		kept := tags[:0]
		for _, t := range tags {
			if m, _ := t.(map[string]any); m != nil && used[fmt.Sprint(m["name"])] {
				kept = append(kept, t)
			}
		}
		doc["tags"] = kept
	}
	// Schemas reachable from everything but the schemas themselves.
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas != nil {
		rest := map[string]any{}
		for k, v := range doc {
			if k != "components" {
				rest[k] = v
			}
		}
		for k, v := range comps {
			if k != "schemas" {
				rest["components."+k] = v
			}
		}
		reach := map[string]bool{}
		queue := schemaRefs(rest, nil)
		for len(queue) > 0 {
			name := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if reach[name] {
				continue
			}
			reach[name] = true
			queue = schemaRefs(schemas[name], queue)
		}
		for name := range schemas {
			if !reach[name] {
				delete(schemas, name)
			}
		}
	}
	if asYAML {
		return yaml.Marshal(doc)
	}
	return json.Marshal(doc)
}

// schemaRefs appends to out the schema names v refers to with
// "$ref": "#/components/schemas/NAME".
func schemaRefs(v any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			if name, ok := strings.CutPrefix(ref, "#/components/schemas/"); ok {
				out = append(out, name)
			}
		}
		for _, e := range x {
			out = schemaRefs(e, out)
		}
	case []any:
		for _, e := range x {
			out = schemaRefs(e, out)
		}
	}
	return out
}
