package config

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/internal/auth"
)

// reporter collects problems found in one YAML file.
type reporter struct {
	file     string
	problems []Problem
}

func (r *reporter) add(key, format string, args ...any) {
	r.problems = append(r.problems, Problem{File: r.file, Key: key, Message: fmt.Sprintf(format, args...)})
}

// pair is one key/value of a YAML mapping.
type pair struct {
	key   string
	value *yaml.Node
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping returns the pairs of a mapping node, reporting a node that is not
// a mapping, non-scalar keys and duplicate keys.
func (r *reporter) mapping(n *yaml.Node, path string) []pair {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		r.add(path, "must be a mapping of keys to values")
		return nil
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			r.add(path, "keys must be plain strings (line %d)", k.Line)
			continue
		}
		if seen[k.Value] {
			r.add(joinKey(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{key: k.Value, value: resolve(n.Content[i+1])})
	}
	return out
}

// scalar returns the trimmed text of a scalar node ("" for null).
func (r *reporter) scalar(n *yaml.Node, key string) (string, bool) {
	n = resolve(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		r.add(key, "must be a single value, not a %s", kindName(n))
		return "", false
	}
	return strings.TrimSpace(n.Value), true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "document"
	}
}

// list returns the items of a list of scalars. A scalar is taken as a
// comma-separated list.
func (r *reporter) list(n *yaml.Node, key string) ([]string, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		return input{text: n.Value}.list(), true
	case yaml.SequenceNode:
		out := []string{}
		ok := true
		for i, item := range n.Content {
			itemKey := fmt.Sprintf("%s[%d]", key, i)
			s, good := r.scalar(item, itemKey)
			if good && s == "" {
				r.add(itemKey, "must not be empty")
				good = false
			}
			ok = ok && good
			if good {
				out = append(out, s)
			}
		}
		return out, ok
	default:
		r.add(key, "must be a list, not a %s", kindName(n))
		return nil, false
	}
}

func (r *reporter) int(n *yaml.Node, key string, min, max int64) (int64, bool) {
	s, ok := r.scalar(n, key)
	if !ok {
		return 0, false
	}
	v, err := parseInt(s, min, max)
	if err != nil {
		r.add(key, "%v", err)
		return 0, false
	}
	return v, true
}

func (r *reporter) bool(n *yaml.Node, key string) (bool, bool) {
	s, ok := r.scalar(n, key)
	if !ok {
		return false, false
	}
	v, err := parseBool(s)
	if err != nil {
		r.add(key, "%v", err)
		return false, false
	}
	return v, true
}

// fields decodes a mapping with a fixed set of keys. Null values are unset
// and leave the default in place; unknown keys are reported.
func (r *reporter) fields(n *yaml.Node, path string, handlers map[string]func(n *yaml.Node, key string)) {
	for _, p := range r.mapping(n, path) {
		key := joinKey(path, p.key)
		h, ok := handlers[p.key]
		if !ok {
			known := slices.Sorted(maps.Keys(handlers))
			r.add(key, "unknown key (known keys: %s)", strings.Join(known, ", "))
			continue
		}
		if isNull(p.value) {
			continue
		}
		h(p.value, key)
	}
}

// yamlFile is a parsed configuration file.
type yamlFile struct {
	reporter
	path     string
	values   map[string]input      // simple settings with a non-empty value
	sections map[string]*yaml.Node // YAML-only sections with a non-null value
}

// value returns the file's value for a simple setting; f may be nil.
func (f *yamlFile) value(name string) (input, bool) {
	if f == nil {
		return input{}, false
	}
	v, ok := f.values[name]
	return v, ok
}

// section returns the file's node of a YAML-only section; f may be nil.
func (f *yamlFile) section(name string) (*yaml.Node, bool) {
	if f == nil {
		return nil, false
	}
	n, ok := f.sections[name]
	return n, ok
}

// SectionNames returns the YAML-only sections (the keys of
// Config.Sources besides the simple settings and "config").
func SectionNames() []string { return sectionNames() }

// sectionNames are the YAML-only top-level keys, in decoding order.
func sectionNames() []string {
	return []string{"scopes", "roles", "default_roles", "password", "argon2", "rate_limits", "registration", "providers", "clients", "hooks", "webhooks"}
}

func findSetting(name string) *setting {
	for i := range settings {
		if settings[i].name == name {
			return &settings[i]
		}
	}
	return nil
}

// readYAML reads and parses the file at path; key names the flag or
// environment variable that named it, for a file that cannot be read.
func readYAML(path, key string) *yamlFile {
	f := &yamlFile{reporter: reporter{file: path}, path: path, values: map[string]input{}, sections: map[string]*yaml.Node{}}
	data, err := os.ReadFile(path)
	if err != nil {
		f.problems = append(f.problems, Problem{Key: key, Message: fmt.Sprintf("cannot read config file: %v", err)})
		return f
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		f.add("", "%v", err)
		return f
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return f // empty file: nothing set
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		f.add("", "must be a mapping of settings (key: value)")
		return f
	}
	for _, p := range f.mapping(root, "") {
		switch s := findSetting(p.key); {
		case s != nil:
			if in, ok := f.simpleValue(s, p.value); ok {
				f.values[s.name] = in
			}
		case slices.Contains(sectionNames(), p.key):
			if !isNull(p.value) {
				f.sections[p.key] = p.value
			}
		default:
			if alt := strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(p.key, "-", "_"), EnvPrefix)); alt != p.key && findSetting(alt) != nil {
				f.add(p.key, "unknown key (did you mean %s?)", alt)
			} else {
				f.add(p.key, "unknown key")
			}
		}
	}
	return f
}

// simpleValue converts the YAML value of a simple setting. Null and empty
// values are unset. Only list settings accept a YAML list.
func (f *yamlFile) simpleValue(s *setting, n *yaml.Node) (input, bool) {
	if n.Kind == yaml.SequenceNode && s.isList {
		items, ok := f.list(n, s.name)
		if !ok || len(items) == 0 {
			return input{}, false
		}
		return input{items: items, isList: true}, true
	}
	text, ok := f.scalar(n, s.name)
	if !ok || text == "" {
		return input{}, false
	}
	return input{text: text}, true
}

// sectionDecoder decodes the YAML-only sections into a Config.
type sectionDecoder struct {
	reporter
}

func (d *sectionDecoder) decode(c *Config, f *yamlFile, getenv func(string) string) {
	rolesOK, scopesOK := true, true
	for _, name := range sectionNames() {
		n, ok := f.sections[name]
		if !ok {
			continue
		}
		before := len(d.problems)
		switch name {
		case "scopes":
			d.scopes(c, n)
		case "roles":
			d.roles(c, n)
		case "default_roles":
			if roles, ok := d.list(n, name); ok {
				c.DefaultRoles = roles
			}
		case "password":
			d.fields(n, name, map[string]func(*yaml.Node, string){
				"min_length": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 1, 256); ok {
						c.Password.MinLength = int(v)
					}
				},
			})
		case "argon2":
			d.fields(n, name, map[string]func(*yaml.Node, string){
				"memory": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 8, math.MaxUint32); ok {
						c.Argon2.Memory = uint32(v)
					}
				},
				"iterations": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 1, math.MaxUint32); ok {
						c.Argon2.Iterations = uint32(v)
					}
				},
				"parallelism": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 1, 255); ok {
						c.Argon2.Parallelism = uint8(v)
					}
				},
			})
		case "rate_limits":
			d.fields(n, name, map[string]func(*yaml.Node, string){
				"login_per_account_ip": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 1, int64(maxInt)); ok {
						c.RateLimits.LoginPerAccountIP = int(v)
					}
				},
				"login_per_ip": func(n *yaml.Node, key string) {
					if v, ok := d.int(n, key, 1, int64(maxInt)); ok {
						c.RateLimits.LoginPerIP = int(v)
					}
				},
				"window": func(n *yaml.Node, key string) {
					s, ok := d.scalar(n, key)
					if !ok {
						return
					}
					w, err := parseDuration(s, false)
					if err != nil {
						d.add(key, "%v", err)
						return
					}
					c.RateLimits.Window = w
				},
			})
		case "registration":
			d.fields(n, name, map[string]func(*yaml.Node, string){
				"reveal_existing": func(n *yaml.Node, key string) {
					if v, ok := d.bool(n, key); ok {
						c.Registration.RevealExisting = v
					}
				},
			})
		case "providers":
			d.providers(c, n, getenv)
		case "clients":
			d.clients(c, n, getenv)
		case "hooks":
			d.hooks(c, n, getenv)
		case "webhooks":
			d.webhooks(c, n)
		}
		if len(d.problems) > before {
			rolesOK = rolesOK && name != "roles"
			scopesOK = scopesOK && name != "scopes"
		}
	}

	// Cross-checks, skipped when their inputs already failed.
	if rolesOK && scopesOK {
		for _, role := range slices.Sorted(maps.Keys(c.Roles)) {
			for _, scope := range c.Roles[role] {
				if _, ok := c.Scopes[scope]; !ok {
					d.add("roles."+role, "scope %q is not defined in scopes", scope)
				}
			}
		}
	}
	if rolesOK {
		for _, role := range c.DefaultRoles {
			if _, ok := c.Roles[role]; !ok {
				d.add("default_roles", "role %q is not defined in roles", role)
			}
		}
	}
	d.checkClients(c, scopesOK)
}

// scopes decodes the scopes section, which replaces the default scopes.
func (d *sectionDecoder) scopes(c *Config, n *yaml.Node) {
	scopes := map[string]string{}
	for _, p := range d.mapping(n, "scopes") {
		key := "scopes." + p.key
		if !validScopeName(p.key) {
			d.add(key, "invalid scope name: must match [a-z][a-z0-9_:.-]*")
			continue
		}
		if desc, ok := d.scalar(p.value, key); ok {
			scopes[p.key] = desc
		}
	}
	c.Scopes = scopes
}

// roles decodes the roles section, which replaces the default roles.
func (d *sectionDecoder) roles(c *Config, n *yaml.Node) {
	roles := map[string][]string{}
	for _, p := range d.mapping(n, "roles") {
		key := "roles." + p.key
		if p.key == "" || strings.ContainsAny(p.key, " \t\r\n,") {
			d.add(key, "invalid role name: must be non-empty, without spaces or commas")
			continue
		}
		if isNull(p.value) {
			roles[p.key] = []string{}
			continue
		}
		if p.value.Kind != yaml.SequenceNode {
			d.add(key, "must be a list of scopes")
			continue
		}
		if scopes, ok := d.list(p.value, key); ok {
			roles[p.key] = scopes
		}
	}
	c.Roles = roles
}

// providers decodes the providers list; the client secret may come from
// the environment, which wins.
func (d *sectionDecoder) providers(c *Config, n *yaml.Node, getenv func(string) string) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.add("providers", "must be a list of providers")
		return
	}
	ids := map[string]int{}
	var out []Provider
	for i, item := range n.Content {
		path := fmt.Sprintf("providers[%d]", i)
		var p Provider
		str := func(dst *string) func(*yaml.Node, string) {
			return func(n *yaml.Node, key string) {
				if s, ok := d.scalar(n, key); ok {
					*dst = s
				}
			}
		}
		if isNull(item) {
			d.add(path, "must be a mapping of provider settings")
			continue
		}
		d.fields(item, path, map[string]func(*yaml.Node, string){
			"id":            str(&p.ID),
			"type":          str(&p.Type),
			"name":          str(&p.Name),
			"issuer":        str(&p.Issuer),
			"client_id":     str(&p.ClientID),
			"client_secret": str(&p.ClientSecret),
			"tenant":        str(&p.Tenant),
			"domain":        str(&p.Domain),
			"scopes": func(n *yaml.Node, key string) {
				if n.Kind == yaml.ScalarNode {
					p.Scopes = strings.FieldsFunc(n.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
					return
				}
				if s, ok := d.list(n, key); ok {
					p.Scopes = s
				}
			},
			"trusted_audiences": func(n *yaml.Node, key string) {
				if s, ok := d.list(n, key); ok {
					p.TrustedAudiences = s
				}
			},
		})
		switch {
		case p.ID == "":
			d.add(path+".id", "is required")
		case !validProviderID(p.ID):
			d.add(path+".id", "%q is invalid: must match [a-z0-9_-]+", p.ID)
		default:
			if j, dup := ids[p.ID]; dup {
				d.add(path+".id", "duplicate provider id %q (also providers[%d])", p.ID, j)
			}
			ids[p.ID] = i
			if s := strings.TrimSpace(getenv(ProviderSecretEnv(p.ID))); s != "" {
				p.ClientSecret = s
			}
		}
		if p.Type == "" {
			d.add(path+".type", "is required (one of %s)", strings.Join(ProviderTypes(), ", "))
		} else if !slices.Contains(ProviderTypes(), p.Type) {
			d.add(path+".type", "must be one of %s, got %q", strings.Join(ProviderTypes(), ", "), p.Type)
		}
		if p.ClientID == "" {
			d.add(path+".client_id", "is required")
		}
		if len(p.TrustedAudiences) > 0 && p.Type == "github" {
			d.add(path+".trusted_audiences", "does not apply to github (it has no ID tokens)")
		}
		out = append(out, p)
	}
	c.Providers = out
}

// clients decodes the clients list (OAuth clients of the OpenID provider);
// a client's secret may come from the environment, which wins. The rules
// of the client registry are checked afterwards, in checkClients.
func (d *sectionDecoder) clients(c *Config, n *yaml.Node, getenv func(string) string) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.add("clients", "must be a list of clients")
		return
	}
	var out []ClientConfig
	for i, item := range n.Content {
		path := fmt.Sprintf("clients[%d]", i)
		if isNull(item) {
			d.add(path, "must be a mapping of client settings")
			continue
		}
		var cl ClientConfig
		str := func(dst *string) func(*yaml.Node, string) {
			return func(n *yaml.Node, key string) {
				if s, ok := d.scalar(n, key); ok {
					*dst = s
				}
			}
		}
		list := func(dst *[]string) func(*yaml.Node, string) {
			return func(n *yaml.Node, key string) {
				if s, ok := d.list(n, key); ok {
					*dst = s
				}
			}
		}
		flag := func(dst *bool) func(*yaml.Node, string) {
			return func(n *yaml.Node, key string) {
				if v, ok := d.bool(n, key); ok {
					*dst = v
				}
			}
		}
		d.fields(item, path, map[string]func(*yaml.Node, string){
			"id":                        str(&cl.ID),
			"secret":                    str(&cl.Secret),
			"name":                      str(&cl.Name),
			"type":                      str(&cl.Type),
			"redirect_uris":             list(&cl.RedirectURIs),
			"post_logout_redirect_uris": list(&cl.PostLogoutRedirectURIs),
			"grant_types":               list(&cl.GrantTypes),
			"scopes": func(n *yaml.Node, key string) {
				if n.Kind == yaml.ScalarNode {
					cl.Scopes = strings.FieldsFunc(n.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
					return
				}
				if s, ok := d.list(n, key); ok {
					cl.Scopes = s
				}
			},
			"first_party": flag(&cl.FirstParty),
			"require_pkce": func(n *yaml.Node, key string) {
				if v, ok := d.bool(n, key); ok {
					cl.RequirePKCE = &v
				}
			},
			"token_endpoint_auth_method":   str(&cl.TokenEndpointAuthMethod),
			"id_token_signed_response_alg": str(&cl.IDTokenAlg),
			"id_token_claims":              flag(&cl.IDTokenClaims),
			"logo_url":                     str(&cl.LogoURL),
		})
		if cl.ID != "" {
			if s := strings.TrimSpace(getenv(ClientSecretEnv(cl.ID))); s != "" {
				cl.Secret = s
			}
		}
		out = append(out, cl)
	}
	c.Clients = out
}

// checkClients checks the clients with the rules of the client registry
// (auth.ValidateConfigClient): the scopes of the scopes section (when it
// is valid) and OpenID Connect's, unique ids, one environment variable per
// secret.
func (d *sectionDecoder) checkClients(c *Config, scopesOK bool) {
	known := func(s string) bool { _, ok := c.Scopes[s]; return ok }
	if !scopesOK {
		known = func(string) bool { return true } // reported in scopes already
	}
	ids := map[string]int{}
	envs := map[string]int{}
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		for _, e := range auth.ValidateConfigClient(cl.Input(), known) {
			key := path
			if e.Field != "" {
				key = path + "." + e.Field
			}
			d.add(key, "%s", e.Message)
		}
		if cl.ID == "" {
			continue
		}
		if j, dup := ids[cl.ID]; dup {
			d.add(path+".id", "duplicate client id %q (also clients[%d])", cl.ID, j)
		} else if j, dup := envs[ClientSecretEnv(cl.ID)]; dup {
			d.add(path+".id", "client ids %q and %q share the secret variable %s: rename one", c.Clients[j].ID, cl.ID, ClientSecretEnv(cl.ID))
		}
		ids[cl.ID], envs[ClientSecretEnv(cl.ID)] = i, i
	}
}

func validScopeName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s[1:] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_:.-", r)) {
			return false
		}
	}
	return true
}

func validProviderID(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
