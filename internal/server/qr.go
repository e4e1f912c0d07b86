package server

import (
	"fmt"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// qrSVG renders text as a QR code in inline SVG: one path of dark modules
// drawn from boombuler/barcode's matrix, with the four-module quiet zone,
// so the page needs no image source its CSP would have to allow.
func qrSVG(text string) (string, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("qr: %w", err)
	}
	b := code.Bounds()
	const quiet = 4
	n := b.Dx() + 2*quiet
	var path strings.Builder
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x-b.Min.X+quiet, y-b.Min.Y+quiet)
			}
		}
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="QR code for your authenticator app" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		n, n, n*5, n*5, n, n, path.String()), nil
}
