package config

import (
	"fmt"
	"net/url"
	"slices"

	"gopkg.in/yaml.v3"

	"gatehouse/internal/auth"
)

// WebhookConfig is a webhook endpoint declared in the file (YAML list
// webhooks:, SPEC §16): the settings of POST /v1/admin/webhooks plus the
// endpoint's signing secret. Load checks it with the rules of the API
// (auth.ValidateConfigWebhook); the server syncs the list into the store
// at start-up, where these endpoints are read-only over the API.
type WebhookConfig struct {
	URL         string
	Events      []string // event types, or "*"
	Description string
	Enabled     *bool // nil: true
	// Secret is "whsec_" and the base64 of at least 24 random bytes.
	Secret string
}

// Input returns w as the service takes it.
func (w WebhookConfig) Input() auth.WebhookInput {
	return auth.WebhookInput{URL: w.URL, Events: slices.Clone(w.Events), Description: w.Description, Enabled: w.Enabled, Secret: w.Secret}
}

// webhooks decodes the webhooks list and checks every entry with the
// rules of the admin API; URLs are checked against webhook_allow_private,
// which is read before the sections.
func (d *sectionDecoder) webhooks(c *Config, n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.add("webhooks", "must be a list of endpoints")
		return
	}
	urls := map[string]int{}
	var out []WebhookConfig
	for i, item := range n.Content {
		path := fmt.Sprintf("webhooks[%d]", i)
		if isNull(item) {
			d.add(path, "must be a mapping of endpoint settings")
			continue
		}
		var w WebhookConfig
		str := func(dst *string) func(*yaml.Node, string) {
			return func(n *yaml.Node, key string) {
				if s, ok := d.scalar(n, key); ok {
					*dst = s
				}
			}
		}
		d.fields(item, path, map[string]func(*yaml.Node, string){
			"url":         str(&w.URL),
			"description": str(&w.Description),
			"secret":      str(&w.Secret),
			"events": func(n *yaml.Node, key string) {
				if s, ok := d.list(n, key); ok {
					w.Events = s
				}
			},
			"enabled": func(n *yaml.Node, key string) {
				if v, ok := d.bool(n, key); ok {
					w.Enabled = &v
				}
			},
		})
		for _, e := range auth.ValidateConfigWebhook(w.Input(), c.WebhookAllowPrivate) {
			key := path
			if e.Field != "" {
				key = path + "." + e.Field
			}
			d.add(key, "%s", e.Message)
		}
		if w.URL != "" {
			if j, dup := urls[w.URL]; dup {
				d.add(path+".url", "duplicate url (also webhooks[%d])", j)
			}
			urls[w.URL] = i
		}
		out = append(out, w)
	}
	c.Webhooks = out
}

// redactedWebhooks copies the endpoints with their secrets and the query
// values of their URLs hidden (receivers often take a token there).
func redactedWebhooks(ws []WebhookConfig) []WebhookConfig {
	if ws == nil {
		return nil
	}
	out := make([]WebhookConfig, len(ws))
	for i, w := range ws {
		w.Events = slices.Clone(w.Events)
		if w.Enabled != nil {
			v := *w.Enabled
			w.Enabled = &v
		}
		if w.Secret != "" {
			w.Secret = redactedText
		}
		w.URL = redactQuery(w.URL)
		out[i] = w
	}
	return out
}

// redactQuery hides every query value of a URL; one that cannot be parsed
// is hidden entirely.
func redactQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redactedText
	}
	if u.RawQuery == "" {
		return s
	}
	q := u.Query()
	for k := range q {
		q[k] = []string{redactedText}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
