package config

import (
	"slices"
	"strings"
	"testing"
)

func TestWebhooksSection(t *testing.T) {
	yaml := `webhooks:
  - url: https://crm.example.com/in?token=abc
    events: [user.created, user.deleted]
    description: CRM
    secret: ` + hookSecret + `
  - url: https://siem.example.com/ingest
    events: ["*", login.failed]
    enabled: false
    secret: ` + hookSecret + `
`
	c := mustLoad(t, nil, nil, yaml)
	if len(c.Webhooks) != 2 {
		t.Fatalf("webhooks = %+v", c.Webhooks)
	}
	a, b := c.Webhooks[0], c.Webhooks[1]
	if a.URL != "https://crm.example.com/in?token=abc" || !slices.Equal(a.Events, []string{"user.created", "user.deleted"}) ||
		a.Description != "CRM" || a.Enabled != nil || a.Secret != hookSecret {
		t.Errorf("webhooks[0] = %+v", a)
	}
	if b.Enabled == nil || *b.Enabled || !slices.Equal(b.Events, []string{"*", "login.failed"}) {
		t.Errorf("webhooks[1] = %+v", b)
	}
	if in := a.Input(); in.URL != a.URL || in.Secret != hookSecret || !slices.Equal(in.Events, a.Events) {
		t.Errorf("Input() = %+v", in)
	}
	if c.WebhookTimeout.String() != "10s" || c.WebhookMaxAttempts != 10 || c.WebhookRetention.String() != "720h0m0s" {
		t.Errorf("defaults: timeout %s, attempts %d, retention %s", c.WebhookTimeout, c.WebhookMaxAttempts, c.WebhookRetention)
	}
	r := c.Redacted()
	if r.Webhooks[0].Secret != redactedText || c.Webhooks[0].Secret != hookSecret || strings.Contains(r.Webhooks[0].URL, "abc") {
		t.Errorf("Redacted: %+v (original %+v)", r.Webhooks[0], c.Webhooks[0])
	}
	*r.Webhooks[1].Enabled = true
	if *c.Webhooks[1].Enabled {
		t.Error("Redacted shares enabled with the original")
	}
}

func TestWebhooksSectionProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		keys       []string
	}{
		{"not a list", "webhooks: {url: x}\n", nil, []string{"webhooks"}},
		{"missing everything", "webhooks:\n  - description: x\n", nil, []string{"webhooks[0].url", "webhooks[0].events", "webhooks[0].secret"}},
		{"bad secret", "webhooks:\n  - {url: 'https://a.example.com/', events: ['*'], secret: nope}\n", nil, []string{"webhooks[0].secret"}},
		{"short secret", "webhooks:\n  - {url: 'https://a.example.com/', events: ['*'], secret: " + shortHookSecret + "}\n", nil, []string{"webhooks[0].secret"}},
		{"http", "webhooks:\n  - {url: 'http://a.example.com/', events: ['*'], secret: " + hookSecret + "}\n", nil, []string{"webhooks[0].url"}},
		{"loopback", "webhooks:\n  - {url: 'https://127.0.0.1/', events: ['*'], secret: " + hookSecret + "}\n", nil, []string{"webhooks[0].url"}},
		{"unknown event", "webhooks:\n  - {url: 'https://a.example.com/', events: [user.exploded], secret: " + hookSecret + "}\n", nil, []string{"webhooks[0].events"}},
		{"unknown key", "webhooks:\n  - {url: 'https://a.example.com/', events: ['*'], secret: " + hookSecret + ", id: x}\n", nil, []string{"webhooks[0].id"}},
		{"duplicate url", "webhooks:\n  - {url: 'https://a.example.com/', events: ['*'], secret: " + hookSecret + "}\n  - {url: 'https://a.example.com/', events: ['*'], secret: " + hookSecret + "}\n", nil, []string{"webhooks[1].url"}},
		{"bad attempts", "", map[string]string{"GATEHOUSE_WEBHOOK_MAX_ATTEMPTS": "0"}, []string{"GATEHOUSE_WEBHOOK_MAX_ATTEMPTS"}},
		{"bad timeout", "", map[string]string{"GATEHOUSE_WEBHOOK_TIMEOUT": "0s"}, []string{"GATEHOUSE_WEBHOOK_TIMEOUT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, nil, tc.env, tc.yaml)
			if got := keysOf(problemsOf(t, err)); !slices.Equal(got, tc.keys) {
				t.Errorf("problems at %q, want %q:\n%v", got, tc.keys, err)
			}
		})
	}
	// With webhook_allow_private, http and loopback load.
	c := mustLoad(t, nil, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"},
		"webhooks:\n  - {url: 'http://127.0.0.1:9000/in', events: ['*'], secret: "+hookSecret+"}\n")
	if len(c.Webhooks) != 1 {
		t.Fatalf("webhooks = %+v", c.Webhooks)
	}
}
