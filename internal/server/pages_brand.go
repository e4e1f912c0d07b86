package server

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// pageCSP is the Content-Security-Policy of a hosted page: this origin's
// stylesheets, images from this origin (and the logo's), forms only to this
// origin (and the origins return_to may name, since Chromium applies
// form-action to the redirect after a form post), no framing, no <base>.
// Pages without passkeys run no script at all; the pages with a passkey
// button may load scripts from this origin (never inline script, never
// eval) and fetch from it.
func (s *Server) pageCSP(script bool) string {
	img := "'self' data:"
	if o := logoOrigin(s.cfg.LogoURL); o != "" {
		img += " " + o
	}
	form := "'self'"
	for _, o := range s.cfg.CORSOrigins {
		form += " " + o
	}
	js := ""
	if script {
		js = "script-src 'self'; connect-src 'self'; "
	}
	return "default-src 'none'; " + js + "style-src 'self'; img-src " + img + "; form-action " + form +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// logoOrigin is the origin of an absolute logo URL ("" for a path on this
// server, which 'self' covers).
func logoOrigin(logo string) string {
	if !strings.HasPrefix(logo, "https://") {
		return ""
	}
	u, err := url.Parse(logo)
	if err != nil || u.Host == "" {
		return ""
	}
	return "https://" + strings.ToLower(u.Host)
}

// handleBrandCSS serves /assets/brand.css: the configured accent colour as
// CSS custom properties, in a stylesheet of its own so that the pages'
// CSP (style-src 'self', no inline style) holds. The colour was validated
// as #rrggbb at start-up, so nothing else can reach the stylesheet.
func (s *Server) handleBrandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(brandCSS(s.cfg.BrandColor)))
}

const defaultBrandColor = "#1f4fd1"

// brandCSS derives the pages' accent palette from one colour, keeping
// every pair that carries text at a contrast of at least 4.5:1 (WCAG 2.2
// AA) whatever colour is configured: button text is white, near-black or
// black, the first that reaches 4.5:1 (black always does when white does
// not); the hover shade moves away from the text colour; link text is the
// accent darkened until it reads on the page background.
func brandCSS(hex string) string {
	c, ok := parseRGB(hex)
	if !ok {
		c, _ = parseRGB(defaultBrandColor)
	}
	fg := rgb{255, 255, 255}
	for _, cand := range []rgb{{255, 255, 255}, {17, 20, 24}, {0, 0, 0}} {
		if fg = cand; contrast(c, cand) >= 4.5 {
			break
		}
	}
	hover := mix(c, rgb{0, 0, 0}, 0.15)
	if fg != (rgb{255, 255, 255}) {
		hover = mix(c, rgb{255, 255, 255}, 0.2)
	}
	text := c
	for i := 0; contrast(text, pageBackground) < 4.5 && i < 40; i++ {
		text = mix(text, rgb{0, 0, 0}, 0.08)
	}
	return fmt.Sprintf(":root {\n  --accent: %s;\n  --accent-hover: %s;\n  --accent-fg: %s;\n  --accent-text: %s;\n}\n", c, hover, fg, text)
}

// pageBackground is --bg of gatehouse.css, the darkest background text
// sits on.
var pageBackground = rgb{0xf3, 0xf4, 0xf6}

type rgb struct{ r, g, b float64 }

func (c rgb) String() string {
	return fmt.Sprintf("#%02x%02x%02x", int(math.Round(c.r)), int(math.Round(c.g)), int(math.Round(c.b)))
}

func parseRGB(hex string) (rgb, bool) {
	if len(hex) != 7 || hex[0] != '#' {
		return rgb{}, false
	}
	n, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		return rgb{}, false
	}
	return rgb{float64(n >> 16 & 0xff), float64(n >> 8 & 0xff), float64(n & 0xff)}, true
}

func mix(a, b rgb, t float64) rgb {
	return rgb{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t}
}

// luminance is the WCAG relative luminance of an sRGB colour.
func luminance(c rgb) float64 {
	ch := func(v float64) float64 {
		v = math.Round(v) / 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(c.r) + 0.7152*ch(c.g) + 0.0722*ch(c.b)
}

// contrast is the WCAG contrast ratio of two colours (1 to 21).
func contrast(a, b rgb) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}
