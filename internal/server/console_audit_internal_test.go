package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
)

// lineCounter is a client that counts the rows (lines) it has received.
type lineCounter struct {
	lines, bytes int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	c.bytes += len(p)
	return len(p), nil
}

// An export streams: while the store is still yielding events, the rows
// before reach the client — never more than auditExportFlushRows behind —
// so the export holds a bounded part of the result, whatever its size.
func TestAuditEncoderStreams(t *testing.T) {
	const total = 20000
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			out := &lineCounter{}
			flushes := 0
			enc := newAuditEncoder(out, format, func() error { flushes++; return nil })
			header := 0
			if format == "csv" {
				header = 1
			}
			base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			for i := 1; i <= total; i++ {
				e := &auth.AuditEvent{ID: fmt.Sprintf("ev-%05d", i), Type: auth.EventLoginFailed, At: base.Add(-time.Duration(i) * time.Second),
					UserID: "u-1", IP: "192.0.2.1", Details: map[string]any{"reason": "bad password", "n": i}}
				if err := enc.write(e); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				// Rows written so far, less what may wait for the next flush.
				if got, min := out.lines-header, i-(auditExportFlushRows-1); got < min {
					t.Fatalf("after %d of %d events the client has %d rows, want at least %d: the export is held back, not streamed", i, total, got, min)
				}
			}
			if out.lines-header < total-auditExportFlushRows {
				t.Fatalf("before the end the client had %d rows of %d", out.lines-header, total)
			}
			if err := enc.close(); err != nil {
				t.Fatal(err)
			}
			if out.lines != total+header {
				t.Fatalf("the client got %d lines, want %d", out.lines, total+header)
			}
			if want := total/auditExportFlushRows + 1; flushes != want {
				t.Fatalf("%d flushes to the client, want %d (every %d rows and at the end)", flushes, want, auditExportFlushRows)
			}
		})
	}
}

// CSV: a header row, proper quoting by encoding/csv, and no cell a
// spreadsheet would run as a formula.
func TestAuditEncoderCSV(t *testing.T) {
	var b bytes.Buffer
	enc := newAuditEncoder(&b, "csv", func() error { return nil })
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	events := []*auth.AuditEvent{
		{ID: "e1", Type: "=HYPERLINK(\"https://evil.example\")", At: at, UserID: "+1", IP: "-2", Details: map[string]any{"note": "a, \"quoted\"\nline"}},
		{ID: "@e2", Type: auth.EventLoginSucceeded, At: at, UserID: "\tu", IP: "\r198.51.100.7"},
		{ID: "e3", Type: "user.updated", At: at, UserID: "u-3", IP: "2001:db8::1", Details: map[string]any{"roles": []any{"admin"}}},
	}
	for _, e := range events {
		if err := enc.write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.close(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("the export is not valid CSV: %v\n%s", err, b.String())
	}
	want := [][]string{
		{"id", "at", "type", "user_id", "ip", "details"},
		{"e1", "2026-05-06T07:08:09.123456Z", "'=HYPERLINK(\"https://evil.example\")", "'+1", "'-2", `{"note":"a, \"quoted\"\nline"}`},
		{"'@e2", "2026-05-06T07:08:09.123456Z", "login.succeeded", "'\tu", "'\r198.51.100.7", "{}"},
		{"e3", "2026-05-06T07:08:09.123456Z", "user.updated", "u-3", "2001:db8::1", `{"roles":["admin"]}`},
	}
	if fmt.Sprintf("%q", rows) != fmt.Sprintf("%q", want) {
		t.Fatalf("CSV rows\n%q\nwant\n%q", rows, want)
	}
}

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{"192.0.2.1", "192.0.2.1"},
		{"{\"a\":\"=1\"}", "{\"a\":\"=1\"}"},
	} {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCompactDetails(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{nil, ""},
		{map[string]any{"via": "console", "actor": "u1"}, "actor=u1 via=console"},
		{map[string]any{"reason": "bad password", "empty": ""}, `empty="" reason="bad password"`},
		{map[string]any{"n": float64(3), "ok": true, "roles": []any{"a", "b"}}, `n=3 ok=true roles=["a","b"]`},
		{map[string]any{"filters": map[string]any{"type": "x"}}, `filters={"type":"x"}`},
	} {
		if got := compactDetails(tc.in); got != tc.want {
			t.Errorf("compactDetails(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// seedAudit fills the audit log of a fresh SQLite store with n events in
// one transaction (one second apart, newest last) and returns the store.
func seedAudit(tb testing.TB, n int) *sqlstore.DB {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "audit.db")
	db, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (id, type, at, user_id, ip, details) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{auth.EventLoginSucceeded, auth.EventLoginFailed, auth.EventPasswordChanged, auth.EventUserUpdated}
	for i := range n {
		details := fmt.Sprintf(`{"method":"password","n":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0"}`, i)
		if _, err := st.ExecContext(ctx, fmt.Sprintf("%026d", i), types[i%len(types)], base.Add(time.Duration(i)*time.Second).UnixMicro(),
			fmt.Sprintf("user-%06d", i%5000), "198.51.100.7", details); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return db
}

// heapSampler records the peak of the live heap, read every few thousand
// rows.
type heapSampler struct {
	base, peak uint64
	ms         runtime.MemStats
}

func newHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{}
	runtime.ReadMemStats(&h.ms)
	h.base, h.peak = h.ms.HeapAlloc, h.ms.HeapAlloc
	return h
}

func (h *heapSampler) sample() {
	runtime.ReadMemStats(&h.ms)
	h.peak = max(h.peak, h.ms.HeapAlloc)
}

// exportAll runs an export of the whole log from db through the encoder to
// w, sampling the heap every 5 000 rows; it returns the rows and the time
// to the first row.
func exportAll(tb testing.TB, db *sqlstore.DB, format string, w io.Writer, h *heapSampler) (int, time.Duration) {
	tb.Helper()
	start := time.Now()
	var first time.Duration
	enc := newAuditEncoder(w, format, func() error { return nil })
	rows := 0
	err := db.EachAudit(context.Background(), auth.AuditQuery{}, func(e *auth.AuditEvent) error {
		if rows == 0 {
			first = time.Since(start)
		}
		rows++
		if rows%5000 == 0 {
			h.sample()
		}
		return enc.write(e)
	})
	if err == nil {
		err = enc.close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return rows, first
}

// The heap an export needs does not grow with the log: exporting 200 000
// events peaks at no more live heap than exporting 20 000 does, give or
// take a few MiB of buffers and garbage.
func TestAuditExportHeapIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 220 000 audit events")
	}
	peak := func(n int) uint64 {
		db := seedAudit(t, n)
		h := newHeapSampler()
		rows, _ := exportAll(t, db, "jsonl", io.Discard, h)
		if rows != n {
			t.Fatalf("exported %d rows of %d", rows, n)
		}
		return h.peak - min(h.peak, h.base)
	}
	small, large := peak(20_000), peak(200_000)
	t.Logf("peak live heap above the start: 20 000 events %.1f MiB, 200 000 events %.1f MiB", mib(small), mib(large))
	// Holding 200 000 events would take well over 100 MiB.
	if large > small+16<<20 {
		t.Fatalf("exporting 200 000 events peaked at %.1f MiB of heap, 20 000 at %.1f MiB: the export grows with the log", mib(large), mib(small))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// BenchmarkAuditExport1M exports a log of 1 000 000 events (SQLite) as
// JSON Lines and as CSV, and reports the peak live heap above the start of
// the export (peak-heap-MiB), the time to the first row and the rows per
// second: the export holds one event at a time, so the peak stays flat
// however large the log.
//
//	go test ./internal/server/ -run '^$' -bench AuditExport1M -benchtime 1x
func BenchmarkAuditExport1M(b *testing.B) {
	const n = 1_000_000
	start := time.Now()
	db := seedAudit(b, n)
	b.Logf("seeded %d events in %s", n, time.Since(start).Round(time.Millisecond))
	for _, format := range []string{"jsonl", "csv"} {
		b.Run(format, func(b *testing.B) {
			var peak uint64
			var first time.Duration
			out := &lineCounter{}
			for b.Loop() {
				*out = lineCounter{}
				h := newHeapSampler()
				rows, f := exportAll(b, db, format, out, h)
				if rows != n {
					b.Fatalf("exported %d rows of %d", rows, n)
				}
				peak, first = max(peak, h.peak-min(h.peak, h.base)), f
			}
			b.ReportMetric(mib(peak), "peak-heap-MiB")
			b.ReportMetric(float64(first.Milliseconds()), "first-row-ms")
			b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "rows/s")
			b.ReportMetric(float64(out.bytes)/(1<<20), "output-MiB")
		})
	}
}

// The JSON Lines rows are the admin API's AuditEventBody.
func TestAuditEncoderJSONL(t *testing.T) {
	var b bytes.Buffer
	enc := newAuditEncoder(&b, "jsonl", func() error { return nil })
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := enc.write(&auth.AuditEvent{ID: "e1", Type: "login.failed", At: at, IP: "192.0.2.1", Details: map[string]any{"html": "<b>&</b>"}}); err != nil {
		t.Fatal(err)
	}
	if err := enc.close(); err != nil {
		t.Fatal(err)
	}
	want := `{"id":"e1","type":"login.failed","at":"2026-05-06T07:08:09Z","ip":"192.0.2.1","details":{"html":"<b>&</b>"}}` + "\n"
	if b.String() != want {
		t.Fatalf("JSON line\n%s\nwant\n%s", b.String(), want)
	}
	var back AuditEventBody
	if err := json.Unmarshal(bytes.TrimSpace(b.Bytes()), &back); err != nil || back.ID != "e1" || !back.At.Equal(at) || back.Details["html"] != "<b>&</b>" {
		t.Fatalf("the line does not decode as an AuditEventBody: %v %+v", err, back)
	}
}
