package server

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/config"
)

// cssVars reads the custom properties of a stylesheet's first :root rule.
func cssVars(t *testing.T, css string) map[string]rgb {
	t.Helper()
	root := regexp.MustCompile(`(?s):root\s*\{(.*?)\}`).FindStringSubmatch(css)
	if root == nil {
		t.Fatalf("no :root rule in %q", css)
	}
	out := map[string]rgb{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;`).FindAllStringSubmatch(root[1], -1) {
		c, ok := parseRGB(strings.ToLower(m[2]))
		if !ok {
			t.Fatalf("--%s: %q is not #rrggbb", m[1], m[2])
		}
		out[m[1]] = c
	}
	return out
}

func TestBrandCSSKeepsContrast(t *testing.T) {
	white := rgb{255, 255, 255}
	for _, hex := range []string{"#1f4fd1", "#f5c400", "#ffffff", "#000000", "#0a7f5c", "#ff0000", "#777777", "#8a8a8a", "#00ffff", "#6b21a8"} {
		t.Run(hex, func(t *testing.T) {
			v := cssVars(t, brandCSS(hex))
			if v["accent"].String() != hex {
				t.Errorf("--accent %s, want the configured %s", v["accent"], hex)
			}
			for _, pair := range []struct {
				a, b string
				bg   rgb
			}{{"accent-fg", "accent", rgb{}}, {"accent-fg", "accent-hover", rgb{}}, {"accent-text", "", white}, {"accent-text", "", pageBackground}} {
				bg := v[pair.b]
				if pair.b == "" {
					bg = pair.bg
				}
				if c := contrast(v[pair.a], bg); c < 4.5 {
					t.Errorf("--%s %s on %s: contrast %.2f, want at least 4.5", pair.a, v[pair.a], bg, c)
				}
			}
		})
	}
	if !strings.Contains(brandCSS("not a colour"), "--accent: "+defaultBrandColor+";") {
		t.Error("an invalid colour does not fall back to the default")
	}
}

// TestStylesheetContrast checks the palette of gatehouse.css: text on its
// backgrounds at 4.5:1 or more, form field borders at 3:1 (WCAG 2.2 AA
// 1.4.3 and 1.4.11), and defaults equal to what brand.css derives from the
// default colour.
func TestStylesheetContrast(t *testing.T) {
	raw, err := webFS.ReadFile("web/assets/gatehouse.css")
	if err != nil {
		t.Fatal(err)
	}
	v := cssVars(t, string(raw))
	tests := []struct {
		fg, bg string
		min    float64
	}{
		{"fg", "card", 4.5}, {"fg", "bg", 4.5}, {"muted", "card", 4.5}, {"muted", "bg", 4.5},
		{"err", "err-bg", 4.5}, {"err", "card", 4.5}, {"ok", "ok-bg", 4.5}, {"warn", "warn-bg", 4.5},
		{"accent-fg", "accent", 4.5}, {"accent-fg", "accent-hover", 4.5}, {"accent-text", "card", 4.5}, {"accent-text", "bg", 4.5},
		{"field", "card", 3}, {"accent-text", "card", 3},
	}
	for _, tt := range tests {
		a, okA := v[tt.fg]
		b, okB := v[tt.bg]
		if !okA || !okB {
			t.Errorf("gatehouse.css lacks --%s or --%s", tt.fg, tt.bg)
			continue
		}
		if c := contrast(a, b); c < tt.min {
			t.Errorf("--%s %s on --%s %s: contrast %.2f, want at least %.1f", tt.fg, a, tt.bg, b, c, tt.min)
		}
	}
	brand := cssVars(t, brandCSS(defaultBrandColor))
	for name, c := range brand {
		if v[name] != c {
			t.Errorf("gatehouse.css --%s %s differs from brand.css for the default colour (%s)", name, v[name], c)
		}
	}
	if v["bg"] != pageBackground {
		t.Errorf("pageBackground %s differs from --bg %s", pageBackground, v["bg"])
	}
}

func TestPageCSP(t *testing.T) {
	tests := []struct {
		name   string
		cfg    config.Config
		script bool
		want   string
	}{
		{"no script", config.Config{}, false,
			"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
		{"passkey script", config.Config{}, true,
			"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
		{"logo and return origins", config.Config{LogoURL: "https://CDN.example.com/a/logo.svg", CORSOrigins: []string{"https://app.example"}}, false,
			"default-src 'none'; style-src 'self'; img-src 'self' data: https://cdn.example.com; form-action 'self' https://app.example; frame-ancestors 'none'; base-uri 'none'"},
		{"logo on this server", config.Config{LogoURL: "/static/logo.png"}, false,
			"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: &tt.cfg}
			if got := s.pageCSP(tt.script); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDescribeDevice(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Chrome on macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"curl/8.5.0", "curl"},
		{"", "Unknown device"},
		{"SomethingElse/1.0 with a rather long user agent string that goes on", "SomethingElse/1.0 with a rather long use…"},
	}
	for _, tt := range tests {
		if got := describeDevice(tt.ua); got != tt.want {
			t.Errorf("describeDevice(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestWaitText(t *testing.T) {
	tests := []struct {
		secs int
		want string
	}{{1, "a second"}, {30, "30 seconds"}, {60, "a minute"}, {61, "2 minutes"}, {900, "15 minutes"}, {7200, "2 hours"}}
	for _, tt := range tests {
		if got := waitText(timeSeconds(tt.secs)); got != tt.want {
			t.Errorf("waitText(%ds) = %q, want %q", tt.secs, got, tt.want)
		}
	}
}

func TestSentence(t *testing.T) {
	if got := sentence("current password is incorrect"); got != "Current password is incorrect." {
		t.Errorf("got %q", got)
	}
	if got := sentence(""); got != msgTryAgain {
		t.Errorf("empty: got %q", got)
	}
	// A blocking hook's refusal may start outside ASCII and end with its
	// own punctuation (SPEC §16).
	for in, want := range map[string]string{"über alles": "Über alles.", "closed!": "Closed!", "why?": "Why?", "cut…": "Cut…", "é": "É."} {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	s := &Server{cfg: &config.Config{}}
	pages := s.parsePages()
	for _, name := range []string{"login", "register", "registered", "logout", "account", "reset", "verify", "forgot", "error"} {
		if pages[name] == nil {
			t.Errorf("no template %s", name)
		}
	}
}

func timeSeconds(n int) time.Duration { return time.Duration(n) * time.Second }
